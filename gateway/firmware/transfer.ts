/**
 * Firmware transfer (gateway/firmware/README.md, "Transfer"), the same on every transport:
 * offers a release to a device and serves the chunks it asks for in its signed reports, over
 * the firmware link (links.ts: MQTT, serial, BLE) of the transport the device was last heard
 * on (a stored frame or a verified report; MQTT when it was never heard). Windowed: each
 * report names the device's offset and how many chunks it takes beyond it, and every chunk
 * in that window not sent yet goes out at once (several in flight, not stop-and-wait), as
 * many as the link carries without overrunning. A report that makes no progress (or says
 * `resume`: after a reconnect or reboot) rewinds the sender to the device's offset, so a
 * transfer resumes from what the device holds. Chunks are read from the log's image blocks
 * and encoded once for every device they go to (chunks.ts, a bounded cache). A link may bound the bytes in flight to all its devices together (MQTT:
 * the broker holds them in memory): a window that does not fit waits for others' reports.
 */
import { decodeSign1, kidToDeviceId, serialFrameMaxWireLength, sigStructure, toHex } from '../../protocols/index.js';
import { CHUNK_OVERHEAD, decodeReport, encodeOffer, type UpdateReport } from '../../protocols/firmware-transfer.js';
import { verifyEd25519 } from '../crypto/ed25519.js';
import type { Logger } from '../logger.js';
import { ChunkCache } from './chunks.js';
import type { FirmwareLink, FirmwareTransport, ReportSource } from './links.js';
import type { FirmwareStore, Release } from './releases.js';

export interface TransferEvent {
  readonly device: string;
  readonly digest: string;
  readonly report: UpdateReport;
}

interface Session {
  readonly release: Release;
  readonly rollout: string;
  /** Next byte not sent yet. */
  sentUpTo: number;
  /** Offset of the last report (-1 before the first). */
  lastOffset: number;
  /** The window the last `downloading` report asked for: chunk size and end. */
  chunk: number;
  end: number;
  /** Framed bytes sent beyond the device's last reported offset, counted in `counted`'s total. */
  inflight: number;
  counted?: FirmwareLink | undefined;
  /** When the device last reported (ms). */
  heardAt: number;
}

/**
 * Bytes in flight to a device not heard for this long no longer count against its link's
 * total: a device that lost power or its link mid-window must not hold the others back.
 */
const STALE_MS = 10_000;

export class FirmwareTransfer {
  private readonly sessions = new Map<string, Session>();
  /** Last report counter per device: a report not newer is a replay. */
  private readonly lastN = new Map<string, number>();
  private readonly listeners = new Set<(e: TransferEvent) => void>();
  /** The transport each device was last heard on. */
  private readonly via = new Map<string, FirmwareTransport>();
  private readonly links = new Map<FirmwareTransport, FirmwareLink>();
  /** Framed bytes in flight per link, against its `totalInflightBytes`. */
  private readonly inflight = new Map<FirmwareLink, number>();
  /** Devices whose window did not fit their link's total, in the order they asked. */
  private readonly waiting = new Set<string>();
  private sweptAt = 0;
  private readonly chunks: ChunkCache;
  readonly stats = { chunks: 0, bytes: 0, rewinds: 0, refusedReports: 0, noRoute: 0, linkFull: 0, waited: 0 };

  constructor(
    links: readonly FirmwareLink[],
    store: FirmwareStore,
    /** The device's active key, undefined when not enrolled or revoked. */
    private readonly deviceKey: (id: string) => Uint8Array | undefined,
    private readonly log: Logger,
  ) {
    for (const l of links) this.links.set(l.transport, l);
    this.chunks = new ChunkCache(store);
  }

  async start(): Promise<this> {
    for (const l of this.links.values()) await l.start((bytes, from) => this.onUp(l, bytes, from));
    return this;
  }

  /** `device` was heard on `transport` (a stored frame): its firmware goes there from now on. */
  heard(device: string, transport: string): void {
    if (this.links.has(transport as FirmwareTransport)) this.via.set(device, transport as FirmwareTransport);
  }

  /** The link a device is reached on. */
  linkOf(device: string): FirmwareLink | undefined {
    return this.links.get(this.via.get(device) ?? 'mqtt');
  }

  onReport(fn: (e: TransferEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Offers a release to a device (again, if it was offered before: a device ignores an offer it holds). */
  offer(device: string, release: Release, rollout: string): void {
    const s = this.sessions.get(device);
    if (!s || s.release !== release) {
      if (s) this.settle(device, s, 0);
      this.sessions.set(device, {
        release,
        rollout,
        sentUpTo: 0,
        lastOffset: -1,
        chunk: 0,
        end: 0,
        inflight: 0,
        heardAt: Date.now(),
      });
    }
    this.send(device, encodeOffer({ manifest: release.signed.bytes, rollout }));
  }

  /** Stops serving a device (its rollout ended or was halted). */
  drop(device: string): void {
    const s = this.sessions.get(device);
    if (!s) return;
    this.settle(device, s, 0);
    this.sessions.delete(device);
    this.waiting.delete(device);
    this.drain();
  }

  /** Stops serving every device of a rollout (aborted). */
  dropRollout(rollout: string): void {
    for (const [device, s] of this.sessions) if (s.rollout === rollout) this.drop(device);
  }

  /** Sets a session's bytes in flight, kept in the total of the link it goes on. */
  private settle(device: string, s: Session, bytes: number): void {
    if (s.counted) this.inflight.set(s.counted, (this.inflight.get(s.counted) ?? 0) - s.inflight);
    s.counted = this.linkOf(device);
    s.inflight = s.counted ? bytes : 0;
    if (s.counted) this.inflight.set(s.counted, (this.inflight.get(s.counted) ?? 0) + s.inflight);
  }

  /** Whether the rest of a session's window fits its link's total (one device alone always does). */
  private fits(link: FirmwareLink, s: Session): boolean {
    const want = framed(s.end - s.sentUpTo, s.chunk);
    if (this.fitsNow(link, s, want)) return true;
    // Does not fit: release what devices gone quiet hold (at most once a second, it walks every session).
    const now = Date.now();
    if (now - this.sweptAt < 1000) return false;
    this.sweptAt = now;
    for (const [device, other] of this.sessions)
      if (other.inflight > 0 && now - other.heardAt >= STALE_MS) this.settle(device, other, 0);
    return this.fitsNow(link, s, want);
  }

  /** `want` more framed bytes for `s` fit the link's total now (a method, not a closure per call). */
  private fitsNow(link: FirmwareLink, s: Session, want: number): boolean {
    const total = this.inflight.get(link) ?? 0;
    return want === 0 || total <= s.inflight || total + want <= (link.totalInflightBytes ?? Number.POSITIVE_INFINITY);
  }

  /** Serves waiting devices, in the order they asked, while their windows fit. */
  private drain(): void {
    for (const device of this.waiting) {
      const s = this.sessions.get(device);
      const link = this.linkOf(device);
      if (s && link && !this.fits(link, s)) return;
      this.waiting.delete(device);
      if (s) this.pump(device, s);
    }
  }

  private send(device: string, payload: Uint8Array): boolean {
    const link = this.linkOf(device);
    if (!link) {
      this.stats.noRoute++;
      return false;
    }
    return link.send(device, payload);
  }

  private onUp(link: FirmwareLink, payload: Uint8Array, from: ReportSource): void {
    const claimed = from.claimed;
    const refuse = (reason: string): void => {
      this.stats.refusedReports++;
      this.log.warn({ device: claimed, transport: link.transport, reason }, 'firmware report refused');
    };
    const s1 = decodeSign1(payload, { maxBytes: 1024 });
    if (!s1.ok) return refuse(s1.error.code);
    const device = kidToDeviceId(s1.value.kid);
    if (device === undefined || (claimed !== undefined && device !== claimed))
      return refuse('kid does not name the link device');
    const key = this.deviceKey(device);
    if (!key) return refuse('device not enrolled or revoked');
    if (!verifyEd25519(key, sigStructure(s1.value.protectedBytes, s1.value.payload), s1.value.signature))
      return refuse('device signature does not verify');
    const r = decodeReport(s1.value.payload);
    if (!r.ok) return refuse(r.error.code);
    const report = r.value;
    if (report.n <= (this.lastN.get(device) ?? -1)) return refuse('report is not newer than the last one');
    this.lastN.set(device, report.n);
    // A verified report is the device heard: its firmware goes back the way it came.
    this.via.set(device, link.transport);
    from.accepted?.(device);
    const digest = report.digest ? toHex(report.digest) : '';
    for (const fn of this.listeners) fn({ device, digest, report });
    const s = this.sessions.get(device);
    if (!s || s.release.digest !== digest) return;
    s.heardAt = Date.now();
    if (report.state === 'downloading') this.serve(device, s, report);
    else this.settle(device, s, 0); // verified or ended: nothing of it in flight any more
    this.drain();
  }

  private serve(device: string, s: Session, r: UpdateReport): void {
    const link = this.linkOf(device);
    if (!link) return;
    const limits = link.limits(device);
    const size = s.release.signed.manifest.size;
    const chunk = Math.max(16, Math.min(r.chunkSize, limits.maxChunk));
    // No more chunks in flight than the link holds: past that a serial port drops writes.
    const window = Math.max(
      1,
      Math.min(r.window, Math.floor(limits.maxInflightBytes / serialFrameMaxWireLength(chunk + CHUNK_OVERHEAD))),
    );
    if (r.offset <= s.lastOffset || r.reason === 'resume' || r.offset > s.sentUpTo) {
      if (s.sentUpTo > r.offset) this.stats.rewinds++;
      s.sentUpTo = r.offset;
    }
    s.lastOffset = r.offset;
    s.chunk = chunk;
    s.end = Math.min(size, r.offset + window * chunk);
    this.settle(device, s, framed(s.sentUpTo - r.offset, chunk));
    this.waiting.delete(device);
    this.pump(device, s);
  }

  /**
   * Sends the rest of a session's window, unless it does not fit the link's total in flight
   * (then the device waits, in order, for others' reports; one device alone always goes).
   */
  private pump(device: string, s: Session): void {
    const link = this.linkOf(device);
    if (!link) return;
    if (!this.fits(link, s)) {
      this.waiting.add(device);
      this.stats.waited++;
      return;
    }
    if (s.sentUpTo >= s.end) return;
    if (link.batch) link.batch(() => this.sendWindow(device, s, link));
    else this.sendWindow(device, s, link);
  }

  /** Sends the chunks of a session's window not sent yet, while the link takes them. */
  private sendWindow(device: string, s: Session, link: FirmwareLink): void {
    while (s.sentUpTo < s.end) {
      const chunk = this.chunks.get(s.release, s.sentUpTo, Math.min(s.chunk, s.end - s.sentUpTo));
      if (!chunk) {
        this.log.warn({ device, digest: s.release.digest }, 'image blocks missing: transfer waits for sync');
        return;
      }
      if (!link.send(device, chunk.message)) {
        // Not taken (link down, queue full): the device's next report asks again from its offset.
        this.stats.linkFull++;
        return;
      }
      s.sentUpTo += chunk.length;
      this.settle(device, s, s.inflight + chunk.length + CHUNK_OVERHEAD);
      this.stats.chunks++;
      this.stats.bytes += chunk.length;
    }
  }
}

/** Framed bytes of `bytes` of image sent in chunks of `chunk`. */
function framed(bytes: number, chunk: number): number {
  return bytes <= 0 ? 0 : bytes + Math.ceil(bytes / chunk) * CHUNK_OVERHEAD;
}
