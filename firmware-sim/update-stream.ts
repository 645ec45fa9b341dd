/**
 * An updatable device's end of a byte stream (serial, BLE): the gateway's offers and chunks
 * arrive as frames of the `COBS(frame ‖ CRC-32C) 0x00` stream and go to the device
 * (update.ts) as they would from MQTT; its signed reports leave framed the same way. Frames
 * that are not firmware messages (frame-acks, commands for another part of the device) are
 * counted and left alone.
 *
 * Fault injection: `corruptChunksAt` flips one data byte of the first chunk at each of those
 * offsets after the frame's own CRC was checked (as a bad RAM or a bug past the link would),
 * so only the chunk's CRC-32C can catch it.
 */
import { type CborKey, type CborValue, decodeCbor, encodeCbor, isMap } from '../protocols/cbor.js';
import { decodeDown, isFirmwareDown } from '../protocols/firmware-transfer.js';
import { Deframer, encodeSerialFrame } from '../protocols/index.js';
import type { UpdatableDevice } from './update.js';

export interface UpdateStreamStats {
  /** Firmware messages handed to the device. */
  messages: number;
  /** Other frames on the stream, ignored. */
  other: number;
  /** Chunks corrupted by `corruptChunksAt`. */
  corrupted: number;
  /** Chunks that did not start at the device's offset (dropped by it: lost or resent ones). */
  outOfOrder: number;
  /** Most bytes a chunk reached past the offset of the device's last report (its last request): the window in use. */
  maxAhead: number;
  /** Largest firmware frame (unframed bytes). */
  largestFrame: number;
}

export class UpdateStream {
  readonly stats: UpdateStreamStats = {
    messages: 0,
    other: 0,
    corrupted: 0,
    outOfOrder: 0,
    maxAhead: 0,
    largestFrame: 0,
  };
  readonly deframer: Deframer;
  private readonly corrupt: Set<number>;
  /** The device's offset when it last reported (what it asked from). */
  private requested = 0;

  constructor(
    private readonly device: () => UpdatableDevice,
    corruptChunksAt: readonly number[] = [],
    maxFrameBytes = 4096,
  ) {
    this.deframer = new Deframer({ maxFrameBytes });
    this.corrupt = new Set(corruptChunksAt);
  }

  /** Bytes from the gateway. */
  push(bytes: Uint8Array): void {
    for (const frame of this.deframer.push(bytes)) {
      if (!isFirmwareDown(frame)) {
        this.stats.other++;
        continue;
      }
      this.stats.messages++;
      if (frame.length > this.stats.largestFrame) this.stats.largestFrame = frame.length;
      if (frame[2] !== 18) this.device().receive(frame);
      else this.chunk(frame);
    }
  }

  /** A report, framed for the wire. */
  frame(report: Uint8Array): Uint8Array {
    this.requested = this.device().offset;
    return encodeSerialFrame(report);
  }

  /**
   * A chunk frame, decoded once here (its CRC-32C checked) and handed to the device decoded;
   * one to corrupt goes as bytes, so the device's own decode finds the bad CRC.
   */
  private chunk(frame: Uint8Array): void {
    const device = this.device();
    if (this.corrupt.size > 0) {
      const d = decodeCbor(frame, { maxBytes: frame.length });
      const m = d.ok && isMap(d.value) ? d.value : undefined;
      const offset = m?.get(2);
      const data = m?.get(3);
      if (m && typeof offset === 'number' && data instanceof Uint8Array && this.corrupt.delete(offset)) {
        this.count(offset, data.length, device.offset);
        return device.receive(this.corrupted(m, data));
      }
    }
    const m = decodeDown(frame);
    if (!m.ok) return; // a bad CRC (or not a chunk): dropped, as the device's own decode would
    if (m.value.type === 'chunk') this.count(m.value.offset, m.value.data.length, device.offset);
    device.receiveMessage(m.value);
  }

  private count(offset: number, length: number, held: number): void {
    if (offset !== held) this.stats.outOfOrder++;
    this.stats.maxAhead = Math.max(this.stats.maxAhead, offset + length - this.requested);
  }

  private corrupted(m: Map<CborKey, CborValue>, original: Uint8Array): Uint8Array {
    const data = Uint8Array.from(original);
    data[data.length >> 1]! ^= 0x40;
    m.set(3, data); // the CRC (key 4) stays the one the gateway computed
    this.stats.corrupted++;
    return encodeCbor(m);
  }
}
