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
import { decodeCbor, encodeCbor, isMap } from '../protocols/cbor.js';
import { isFirmwareDown } from '../protocols/firmware-transfer.js';
import { Deframer, encodeSerialFrame } from '../protocols/index.js';
import type { UpdatableDevice } from './update.js';

export interface UpdateStreamStats {
  /** Firmware messages handed to the device. */
  messages: number;
  /** Other frames on the stream, ignored. */
  other: number;
  /** Chunks corrupted by `corruptChunksAt`. */
  corrupted: number;
}

export class UpdateStream {
  readonly stats: UpdateStreamStats = { messages: 0, other: 0, corrupted: 0 };
  readonly deframer: Deframer;
  private readonly corrupt: Set<number>;

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
      this.device().receive(this.corrupt.size > 0 ? this.maybeCorrupt(frame) : frame);
    }
  }

  /** A report, framed for the wire. */
  static frame(report: Uint8Array): Uint8Array {
    return encodeSerialFrame(report);
  }

  private maybeCorrupt(frame: Uint8Array): Uint8Array {
    const d = decodeCbor(frame);
    if (!d.ok || !isMap(d.value) || d.value.get(0) !== 18) return frame;
    const m = d.value;
    const offset = m.get(2) as number;
    if (!this.corrupt.delete(offset)) return frame;
    const data = Uint8Array.from(m.get(3) as Uint8Array);
    data[data.length >> 1]! ^= 0x40;
    m.set(3, data); // the CRC (key 4) stays the one the gateway computed
    this.stats.corrupted++;
    return encodeCbor(m);
  }
}
