/**
 * The local store: one lmdb environment under the data directory.
 *
 * Frames are kept verbatim (the signed COSE bytes) with receive metadata, keyed
 * by a gateway-local receive sequence number, with indexes by device and by
 * receive time and a dedupe index by (device, boot, seq). Writes issued in one
 * event-loop turn share one lmdb transaction (group commit); `durable()` resolves
 * once that transaction is flushed to disk, which is when a frame may be acked.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Database, open, type RootDatabase } from 'lmdb';

/**
 * lmdb-js leaves one orphaned rejected promise per failed commit (seen with
 * ENOSPC: every failed transaction also surfaces as an unhandled rejection we
 * cannot attach to). The failure itself reaches us through `durable()`, so the
 * process-level handler may treat these as already reported.
 */
export function isStoreCommitFailure(reason: unknown): boolean {
  return reason instanceof Error && 'commitError' in reason && reason.message.startsWith('Commit failed');
}

export interface StoredFrame {
  /** Gateway-local receive sequence number (the frame's key). */
  readonly rx: number;
  readonly device: string;
  readonly boot: number;
  readonly seq: number;
  /** Receive time, ms since the epoch (gateway clock). */
  readonly rxTime: number;
  /** Device clock from the frame body, if it sent one. */
  readonly deviceTime?: number;
  /** Transport the frame arrived on (mqtt, serial, ble). */
  readonly transport: string;
  /** The COSE_Sign1 bytes exactly as received. */
  readonly frame: Uint8Array;
}

export interface DeviceRecord {
  readonly id: string;
  /** Raw Ed25519 public key, hex. */
  readonly publicKey: string;
  readonly site?: string;
  readonly model?: string;
  readonly name?: string;
  readonly enrolledAt: number;
  readonly revokedAt?: number;
}

/** Persisted replay-window state of one device. */
export interface WindowRecord {
  readonly boot: number;
  readonly max: number;
  readonly bits: Uint8Array;
}

type DedupeKey = [string, number, number];

export interface FrameQuery {
  readonly device?: string;
  /** Receive time lower bound, ms (inclusive). */
  readonly since?: number;
  /** Receive time upper bound, ms (exclusive). */
  readonly until?: number;
  readonly limit?: number;
  /** Resume after this frame (its receive time and number), for paging; overrides `since`. */
  readonly after?: { readonly rxTime: number; readonly rx: number };
}

export class Store {
  readonly root: RootDatabase;
  private readonly frames: Database<StoredFrame, number>;
  private readonly byDevice: Database<number, [string, number, number]>;
  private readonly byTime: Database<number, [number, number]>;
  private readonly dedupe: Database<number, DedupeKey>;
  readonly devices: Database<DeviceRecord, string>;
  private readonly windows: Database<WindowRecord, string>;
  private nextRx: number;
  private lastWrite: Promise<unknown> = Promise.resolve();

  private constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
    this.root = open({ path: join(dir, 'outpost.lmdb'), maxDbs: 32, compression: false, overlappingSync: false });
    this.frames = this.root.openDB({ name: 'frames' });
    this.byDevice = this.root.openDB({ name: 'frames-by-device' });
    this.byTime = this.root.openDB({ name: 'frames-by-time' });
    this.dedupe = this.root.openDB({ name: 'frames-dedupe' });
    this.devices = this.root.openDB({ name: 'devices' });
    this.windows = this.root.openDB({ name: 'replay-windows' });
    let last = 0;
    for (const k of this.frames.getKeys({ reverse: true, limit: 1 })) last = k;
    this.nextRx = last + 1;
  }

  static open(dir: string): Store {
    return new Store(dir);
  }

  /** Queues a frame in the current write batch; returns its receive number. */
  appendFrame(f: Omit<StoredFrame, 'rx'>): number {
    const rx = this.nextRx++;
    const rec: StoredFrame = { rx, ...f, frame: Buffer.from(f.frame.buffer, f.frame.byteOffset, f.frame.byteLength) };
    this.track(this.frames.put(rx, rec));
    this.track(this.byDevice.put([f.device, f.rxTime, rx], rx));
    this.track(this.byTime.put([f.rxTime, rx], rx));
    this.track(this.dedupe.put([f.device, f.boot, f.seq], rx));
    return rx;
  }

  putWindow(device: string, w: WindowRecord): void {
    this.track(this.windows.put(device, { boot: w.boot, max: w.max, bits: Buffer.from(w.bits) }));
  }

  getWindow(device: string): WindowRecord | undefined {
    return this.windows.get(device);
  }

  /** The receive number of a stored (device, boot, seq), if any. */
  findFrame(device: string, boot: number, seq: number): number | undefined {
    return this.dedupe.get([device, boot, seq]);
  }

  /** Queues the deletion of a stored frame and its index entries (retention, gateway/log). */
  deleteFrame(rx: number): void {
    const f = this.frames.get(rx);
    if (!f) return;
    this.track(this.frames.remove(rx));
    this.track(this.byDevice.remove([f.device, f.rxTime, rx]));
    this.track(this.byTime.remove([f.rxTime, rx]));
    this.track(this.dedupe.remove([f.device, f.boot, f.seq]));
  }

  getFrame(rx: number): StoredFrame | undefined {
    return this.frames.get(rx);
  }

  /**
   * A promise for everything queued so far: it resolves once those writes are
   * committed and flushed to disk, and rejects if their transaction failed
   * (for example, the disk is full). Take it right after queuing a batch.
   */
  durable(): Promise<void> {
    // Transactions commit in order, so the last queued write settling covers all before it.
    const last = this.lastWrite;
    return last.then(() => this.root.flushed).then(() => undefined);
  }

  /** Adds a write queued on `root` (or one of its databases) to what `durable()` waits for. */
  track(p: Promise<unknown>): void {
    // Keep failures observable through durable() without an unhandled rejection in between;
    // lmdb also hangs a rejected `commitError` promise on the error, which must be observed too.
    p.catch((err: { commitError?: Promise<unknown> }) => void err?.commitError?.catch(() => {}));
    this.lastWrite = p;
  }

  /** Frames in receive-time order, by device or across all devices. */
  *queryFrames(q: FrameQuery): Generator<StoredFrame> {
    const since = q.since ?? 0;
    const until = q.until ?? Number.MAX_SAFE_INTEGER;
    let left = q.limit ?? Infinity;
    // Keys are (…, rxTime, rx): resuming just past a frame's key skips exactly the frames already seen.
    const from = q.after ? [q.after.rxTime, q.after.rx + 1] : [since];
    const ids =
      q.device !== undefined
        ? this.byDevice.getRange({ start: [q.device, ...from], end: [q.device, until] })
        : this.byTime.getRange({ start: from as [number], end: [until] });
    for (const { value } of ids) {
      if (left-- <= 0) return;
      const f = this.frames.get(value);
      if (f) yield f;
    }
  }

  /** The newest `n` frames of a device, newest first. */
  *latestFrames(device: string, n: number): Generator<StoredFrame> {
    const ids = this.byDevice.getRange({
      start: [device, Number.MAX_SAFE_INTEGER],
      end: [device, 0],
      reverse: true,
      limit: n,
    });
    for (const { value } of ids) {
      const f = this.frames.get(value);
      if (f) yield f;
    }
  }

  /** Frames stored, from the database's own entry count (O(1); getCount() walks every key). */
  frameCount(): number {
    return (this.frames.getStats() as { entryCount: number }).entryCount;
  }

  /** Bytes the environment uses on disk (pages in use × page size). */
  sizeBytes(): number {
    const s = this.root.getStats() as { pageSize: number; lastPageNumber: number };
    return (s.lastPageNumber + 1) * s.pageSize;
  }

  async close(): Promise<void> {
    await this.root.close();
  }
}
