/**
 * Firmware transfer over MQTT (gateway/firmware/README.md, "Transfer"): offers a release to a
 * device on its `fw-down` topic and serves the chunks it asks for in its signed reports on
 * `fw-up`. Windowed: each report names the device's offset and how many chunks it takes
 * beyond it, and every chunk in that window not sent yet goes out at once (several in
 * flight, not stop-and-wait). A report that makes no progress (or says `resume`: after a
 * reconnect or reboot) rewinds the sender to the device's offset, so a transfer resumes
 * from what the device holds. Chunks are read from the log's image blocks as they are sent.
 */
import { decodeSign1, kidToDeviceId, sigStructure, toHex, topics } from '../../protocols/index.js';
import {
  decodeReport,
  encodeChunk,
  encodeOffer,
  MAX_CHUNK_BYTES,
  type UpdateReport,
} from '../../protocols/firmware-transfer.js';
import { verifyEd25519 } from '../crypto/ed25519.js';
import type { Logger } from '../logger.js';
import type { FirmwareStore, Release } from './releases.js';

/** What the transfer needs of the MQTT broker. */
export interface FirmwareBroker {
  publish(topic: string, payload: Uint8Array, opts?: { qos?: 0 | 1 }): Promise<void>;
  /** Calls `fn` with each message published on a topic matching `filter`. */
  subscribe(filter: string, fn: (topic: string, payload: Uint8Array) => void): Promise<void>;
}

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
}

export class FirmwareTransfer {
  private readonly sessions = new Map<string, Session>();
  /** Last report counter per device: a report not newer is a replay. */
  private readonly lastN = new Map<string, number>();
  private readonly listeners = new Set<(e: TransferEvent) => void>();
  readonly stats = { chunks: 0, bytes: 0, rewinds: 0, refusedReports: 0 };

  constructor(
    private readonly broker: FirmwareBroker,
    private readonly store: FirmwareStore,
    /** The device's active key, undefined when not enrolled or revoked. */
    private readonly deviceKey: (id: string) => Uint8Array | undefined,
    private readonly log: Logger,
  ) {}

  async start(): Promise<this> {
    await this.broker.subscribe(topics.fwUpWildcard, (topic, payload) => this.onUp(topic, payload));
    return this;
  }

  onReport(fn: (e: TransferEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Offers a release to a device (again, if it was offered before: a device ignores an offer it holds). */
  offer(device: string, release: Release, rollout: string): void {
    const s = this.sessions.get(device);
    if (!s || s.release !== release) this.sessions.set(device, { release, rollout, sentUpTo: 0, lastOffset: -1 });
    this.send(device, encodeOffer({ manifest: release.signed.bytes, rollout }));
  }

  /** Stops serving a device (its rollout ended or was halted). */
  drop(device: string): void {
    this.sessions.delete(device);
  }

  /** Stops serving every device of a rollout (aborted). */
  dropRollout(rollout: string): void {
    for (const [device, s] of this.sessions) if (s.rollout === rollout) this.sessions.delete(device);
  }

  private send(device: string, payload: Uint8Array): void {
    this.broker
      .publish(topics.fwDown(device), payload, { qos: 1 })
      .catch((err: unknown) => this.log.debug({ device, err: (err as Error).message }, 'firmware publish failed'));
  }

  private onUp(topic: string, payload: Uint8Array): void {
    const claimed = topic.split('/')[3];
    const refuse = (reason: string): void => {
      this.stats.refusedReports++;
      this.log.warn({ device: claimed, reason }, 'firmware report refused');
    };
    const s1 = decodeSign1(payload, { maxBytes: 1024 });
    if (!s1.ok) return refuse(s1.error.code);
    const device = kidToDeviceId(s1.value.kid);
    if (device === undefined || device !== claimed) return refuse('kid does not name the topic device');
    const key = this.deviceKey(device);
    if (!key) return refuse('device not enrolled or revoked');
    if (!verifyEd25519(key, sigStructure(s1.value.protectedBytes, s1.value.payload), s1.value.signature))
      return refuse('device signature does not verify');
    const r = decodeReport(s1.value.payload);
    if (!r.ok) return refuse(r.error.code);
    const report = r.value;
    if (report.n <= (this.lastN.get(device) ?? -1)) return refuse('report is not newer than the last one');
    this.lastN.set(device, report.n);
    const digest = report.digest ? toHex(report.digest) : '';
    for (const fn of this.listeners) fn({ device, digest, report });
    const s = this.sessions.get(device);
    if (!s || s.release.digest !== digest) return;
    if (report.state === 'downloading') this.serve(device, s, report);
  }

  private serve(device: string, s: Session, r: UpdateReport): void {
    const size = s.release.signed.manifest.size;
    const chunk = Math.max(64, Math.min(r.chunkSize, MAX_CHUNK_BYTES));
    if (r.offset <= s.lastOffset || r.reason === 'resume' || r.offset > s.sentUpTo) {
      if (s.sentUpTo > r.offset) this.stats.rewinds++;
      s.sentUpTo = r.offset;
    }
    s.lastOffset = r.offset;
    const end = Math.min(size, r.offset + Math.max(1, r.window) * chunk);
    while (s.sentUpTo < end) {
      const data = this.store.read(s.release, s.sentUpTo, Math.min(chunk, end - s.sentUpTo));
      if (!data || data.length === 0) {
        this.log.warn({ device, digest: s.release.digest }, 'image blocks missing: transfer waits for sync');
        return;
      }
      this.send(device, encodeChunk({ digest: s.release.signed.manifest.digest, offset: s.sentUpTo, data }));
      s.sentUpTo += data.length;
      this.stats.chunks++;
      this.stats.bytes += data.length;
    }
  }
}
