/**
 * The gateway end of one `COBS(frame ‖ CRC-32C) 0x00` byte stream, shared by
 * the serial and BLE transports (DESIGN.md: UART and BLE share one deframer).
 *
 * Bytes go in with `push`; each intact frame is submitted to ingest without
 * waiting, and when its outcome is final a gateway-signed frame-ack goes back
 * through `write` (the link's own writer: a serial port, or the BLE RX
 * characteristic chunked to the MTU). A rejected frame is acked only when its
 * counters are the device's own (a signed replay): acking unverified counters
 * would let anyone on the line make a device drop a pending frame with a
 * forgery naming it. Transient failures get no ack, so the device resends.
 *
 * A firmware report (protocols/firmware-transfer.ts) is not ingested: it goes to the link's
 * `onFirmware` (the firmware transfer checks it), so one stream carries both.
 *
 * `reset()` forgets a partial frame (link reopened, peripheral reconnected).
 */
import {
  AckStatus,
  decodeBody,
  decodeSign1,
  Deframer,
  encodeSerialFrame,
  signBody,
  type SignFn,
} from '../../protocols/index.js';
import { isFirmwareReport } from '../../protocols/firmware-transfer.js';
import type { IngestPipeline } from '../ingest/pipeline.js';
import type { IngestOutcome } from '../ingest/outcome.js';

/** Counters a FrameStream moves (a link's stats object may carry more). */
export interface FrameStreamStats {
  bytesIn: number;
  frames: number;
  stored: number;
  duplicates: number;
  rejected: number;
  /** Transient ingest failures: not acked, the device resends. */
  failed: number;
  /** Frames dropped because too many of this stream's frames were in flight. */
  shed: number;
  acks: number;
  /** Firmware reports handed to the firmware transfer (not ingested). */
  firmware: number;
}

/** What every link gives its FrameStream alike (a link's deps carry these and more). */
export interface FrameStreamSettings {
  readonly ingest: IngestPipeline;
  readonly gatewayId: string;
  readonly sign: SignFn;
  readonly maxFrameBytes: number;
  /** Frames submitted and not yet answered before more are shed (not acked, so resent). */
  readonly maxInflight: number;
}

/** What each link gives its FrameStream of its own. */
export interface FrameStreamLink {
  /** Ingest metadata for each frame: transport, source, and the device the link is bound to. */
  readonly meta: () => { transport: string; source: string; claimedDevice?: string };
  /** Writes bytes toward the device; false when they could not be queued. */
  readonly write: (bytes: Uint8Array) => boolean;
  /** A frame of `device` was stored or was a duplicate (the device is alive on this link). */
  readonly onDevice?: (device: string) => void;
  /** A firmware report arrived (unchecked: the firmware transfer verifies it). */
  readonly onFirmware?: (frame: Uint8Array) => void;
}

/** The ack status for a final outcome (undefined: transient, no ack). */
export function ackStatusFor(o: IngestOutcome): number | undefined {
  switch (o.status) {
    case 'stored':
      return AckStatus.ok;
    case 'duplicate':
      return AckStatus.duplicate;
    case 'rejected':
      return o.reason === 'bad-signature'
        ? AckStatus.badSignature
        : o.reason === 'replay'
          ? AckStatus.replayed
          : AckStatus.rejected;
    case 'failed':
      return undefined;
  }
}

export class FrameStream {
  readonly deframer: Deframer;
  private inflight = 0;

  private readonly opts: FrameStreamSettings & FrameStreamLink;

  constructor(
    settings: FrameStreamSettings,
    link: FrameStreamLink,
    readonly stats: FrameStreamStats,
  ) {
    this.opts = {
      ingest: settings.ingest,
      gatewayId: settings.gatewayId,
      sign: settings.sign,
      maxFrameBytes: settings.maxFrameBytes,
      maxInflight: settings.maxInflight,
      ...link,
    };
    this.deframer = new Deframer({ maxFrameBytes: settings.maxFrameBytes });
  }

  /** Frames of this stream submitted and not answered yet. */
  get pending(): number {
    return this.inflight;
  }

  /** Feeds bytes from the link. */
  push(chunk: Uint8Array): void {
    this.stats.bytesIn += chunk.length;
    for (const frame of this.deframer.push(chunk)) this.submit(frame);
  }

  /** Drops a partial frame (counted by the deframer as discarded bytes). */
  reset(): void {
    this.deframer.reset();
  }

  private submit(frame: Uint8Array): void {
    this.stats.frames++;
    if (this.opts.onFirmware && isFirmwareReport(frame)) {
      this.stats.firmware++;
      this.opts.onFirmware(frame);
      return;
    }
    if (this.inflight >= this.opts.maxInflight) {
      this.stats.shed++;
      return;
    }
    this.inflight++;
    void this.opts.ingest.submit(frame, this.opts.meta()).then((o) => {
      this.inflight--;
      this.answer(frame, o);
    });
  }

  private answer(frame: Uint8Array, o: IngestOutcome): void {
    if (o.status === 'failed') {
      this.stats.failed++;
      return;
    }
    if (o.status === 'stored') this.stats.stored++;
    else if (o.status === 'duplicate') this.stats.duplicates++;
    else this.stats.rejected++;
    let boot: number;
    let seq: number;
    if (o.status === 'rejected') {
      const c = o.reason === 'replay' ? claimedCounters(frame) : undefined;
      if (!c) return;
      ({ boot, seq } = c);
    } else {
      ({ boot, seq } = o);
      this.opts.onDevice?.(o.device);
    }
    const ack = signBody(
      { type: 'frame-ack', boot, seq, status: ackStatusFor(o)! },
      this.opts.gatewayId,
      this.opts.sign,
    );
    if (this.opts.write(encodeSerialFrame(ack))) this.stats.acks++;
  }
}

/** (boot, seq) as the frame claims them, without checking its signature. */
function claimedCounters(frame: Uint8Array): { boot: number; seq: number } | undefined {
  const c = decodeSign1(frame);
  if (!c.ok) return undefined;
  const b = decodeBody(c.value.payload);
  if (!b.ok || (b.value.type !== 'reading' && b.value.type !== 'command-ack')) return undefined;
  return { boot: b.value.boot, seq: b.value.seq };
}
