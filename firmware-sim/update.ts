/**
 * An updatable device (firmware-sim/README.md, "Firmware updates"): two slots and an
 * MCUboot-like test boot. It takes an offer only when the manifest verifies under its release
 * key and is for its model, newer than what runs and not above its minimum; downloads the
 * image into slot 1 in order, writing each chunk as it comes and persisting the slot and its
 * offset with each report (`reportEvery`: three quarters of a window; update-store.ts), so a transfer resumes from
 * the last offset it reported after a disconnect, reboot or power loss; checks the SHA-256
 * before installing and again at the trial boot; confirms when its self-test passes, and
 * otherwise the next boot finds the trial unconfirmed and goes back to the old image.
 * A download the gateway stopped serving (no chunk for `stallMs`) gives way to an offer of
 * another release, and after `abandonMs` without a chunk it is given up (reported `idle`,
 * reason `abandoned`): a device is never held by a rollout that was aborted mid-download.
 * Every step is reported in a report signed with the device key (protocols/firmware-transfer.ts).
 */
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import {
  decodeManifest,
  type FirmwareManifest,
  manifestRefusal,
  verifyManifest,
} from '../protocols/firmware-manifest.js';
import { bytesEqual } from '../protocols/bytes.js';
import {
  type DownMessage,
  decodeDown,
  encodeReport,
  type UpdateReport,
  type UpdateState,
} from '../protocols/firmware-transfer.js';
import { deviceIdToKid, encodeSign1, fromHex, toHex } from '../protocols/index.js';
import * as ed from '@noble/ed25519';
import { createSigner, type SignerImpl } from './crypto.js';
import { type FlashSync, type UpdateFlash, UpdateStore } from './update-store.js';

export interface UpdatableDeviceOptions {
  readonly id: string;
  readonly seed: Uint8Array;
  readonly model: string;
  /** The factory version, used when the directory holds no state yet. */
  readonly version: string;
  /** The release key the device trusts (Ed25519 public key). */
  readonly releaseKey: Uint8Array;
  readonly dir: string;
  /** Whether saves flush to the host's disk (update-store.ts, FlashSync): `fsync` by default. */
  readonly flashSync?: FlashSync;
  /** Sends a signed report (COSE_Sign1) to the gateway. */
  readonly send: (report: Uint8Array) => void;
  /** The new image's self-test fails: the trial boot never confirms. */
  readonly failTestBoot?: boolean;
  readonly chunkSize?: number;
  /** Chunks taken beyond the offset at once. */
  readonly window?: number;
  /** A download with no chunk for this long asks again from its offset. */
  readonly stallMs?: number;
  /**
   * A download with no chunk for this long is given up (its rollout aborted, its gateway gone):
   * the device is idle again, holding the bytes it has, so an offer of the same release
   * resumes it and an offer of another is taken.
   */
  readonly abandonMs?: number;
  /** Time the trial image takes to run its self-test. */
  readonly selfTestMs?: number;
  /**
   * Which library signs the reports: `noble` (pure JS, the default, as the frame simulator) or
   * `node` (OpenSSL): for benches where the device shares the gateway's process and its signing
   * would otherwise be measured as the link's cost.
   */
  readonly signer?: SignerImpl;
  /** Called with each report sent (for logs). */
  readonly onReport?: (state: UpdateState, offset: number, reason?: string) => void;
}

const SLOT = 1;

/**
 * Chunks stored between two `downloading` reports: the window less a quarter of it (at least
 * one chunk), which stays in flight while the report travels, so the gateway's next chunks
 * leave before the device runs dry. Each report is signed, saved with its offset and verified
 * by the gateway: at half a window (as before, with a window of 4 at MTU 247: every 2 chunks)
 * they were ~30 % of a BLE transfer's CPU; now every 6 of 8 there (bench/README.md).
 */
export const reportEvery = (window: number): number => Math.max(1, window - Math.max(1, window >> 2));

export class UpdatableDevice {
  private readonly store: UpdateStore;
  private readonly flash: UpdateFlash;
  private readonly sign: ReturnType<typeof createSigner>;
  private manifest?: FirmwareManifest;
  private sinceReport = 0;
  private lastChunkAt = 0;
  /** When the download last moved (a chunk stored, the offer taken, power-on): what stalls and abandons count from. */
  private lastProgressAt = Date.now();
  private timer?: NodeJS.Timeout;
  /** Outcomes in the order reported (for tests and the CLI's log). */
  readonly history: { state: UpdateState; reason?: string; offset: number }[] = [];

  constructor(private readonly o: UpdatableDeviceOptions) {
    this.store = new UpdateStore(o.dir, o.flashSync);
    this.flash = this.store.load(o.version);
    this.sign = createSigner(o.seed, o.signer);
    if (this.flash.pending) {
      const d = decodeManifest(fromHex(this.flash.pending.manifest)!);
      if (d.ok) this.manifest = d.value.manifest;
    }
  }

  get running(): Readonly<UpdateFlash['running']> {
    return this.flash.running;
  }
  get phase(): UpdateFlash['phase'] {
    return this.flash.phase;
  }
  get offset(): number {
    return this.flash.pending?.offset ?? 0;
  }

  private get chunkSize(): number {
    return this.o.chunkSize ?? 4096;
  }
  private get window(): number {
    return this.o.window ?? 8;
  }
  private get stallMs(): number {
    return this.o.stallMs ?? 3000;
  }

  /** Power-on: the bootloader's decision about a trial image, then the download's state. */
  boot(): void {
    this.flash.boot++;
    this.lastProgressAt = Date.now();
    if (this.flash.phase === 'trial-booted') {
      // The trial ran and did not confirm before this reset: back to the old image (MCUboot revert).
      this.endUpdate('rolled-back', 'test-boot-not-confirmed');
    } else if (this.flash.phase === 'trial-pending') {
      this.trialBoot();
    } else if (this.flash.phase === 'downloading') {
      // Bytes past the persisted offset may be torn: the offset is what the slot holds.
      this.store.truncateSlot1(this.offset);
      this.store.save(this.flash);
    } else this.store.save(this.flash);
    this.timer ??= setInterval(() => this.checkStall(), Math.max(200, this.stallMs / 2));
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.store.close();
  }

  /** (Re)connected to the gateway: says where it is, asking to resume a download. */
  connected(): void {
    if (this.flash.phase === 'downloading') this.requestChunks('resume');
    else if (this.flash.last)
      this.report(this.flash.last.state, fromHex(this.flash.last.digest)!, this.flash.last.reason);
    else this.report('idle', null);
  }

  /** A message from the gateway's fw-down topic. */
  receive(bytes: Uint8Array): void {
    const m = decodeDown(bytes);
    if (!m.ok) return; // a chunk with a bad CRC is dropped; the stall timer asks for it again
    this.receiveMessage(m.value);
  }

  /** A message already decoded (and its chunk CRC checked) by decodeDown: update-stream.ts decodes each frame once. */
  receiveMessage(m: DownMessage): void {
    if (m.type === 'offer') this.offer(m.manifest, m.rollout);
    else this.chunk(m.digest, m.offset, m.data);
  }

  private offer(bytes: Uint8Array, rollout: string): void {
    const claimed = decodeManifest(bytes);
    const digest = claimed.ok ? claimed.value.manifest.digest : null;
    const v = verifyManifest(bytes, [this.o.releaseKey], (k, msg, sig) => ed.verify(sig, msg, k));
    if (!v.ok) return this.report('failed', digest, v.error.code.replace('firmware/', ''), v.error.message);
    const m = v.value.manifest;
    const hex = toHex(m.digest);
    if (this.flash.pending && this.flash.pending.manifest === toHex(bytes)) {
      // Offered again while at it: say where it stands.
      if (this.flash.phase === 'downloading') this.requestChunks('resume');
      // A download it gave up: taken up again from the bytes it holds.
      else if (this.flash.phase === 'idle') this.take(m, rollout, bytes, this.flash.pending.offset);
      return;
    }
    if (this.flash.running.digest === hex) return this.report('confirmed', m.digest);
    if (this.flash.last?.digest === hex) return this.report(this.flash.last.state, m.digest, this.flash.last.reason);
    // One update at a time; but a download nobody serves any more (aborted) gives way.
    if (this.flash.phase === 'downloading' && Date.now() - this.lastProgressAt < this.stallMs) return;
    if (this.flash.phase !== 'idle' && this.flash.phase !== 'downloading') return;
    const refusal = manifestRefusal(m, { model: this.o.model, version: this.flash.running.version, slot: SLOT });
    if (refusal) return this.report('failed', m.digest, refusal.code, refusal.message);
    if (this.flash.phase === 'downloading') this.abandon(`superseded by an offer of ${m.version}`);
    this.take(m, rollout, bytes, 0);
  }

  /** Takes an offer: downloads it into slot 1 from `offset` (0: a new image; else what the slot holds of it). */
  private take(m: FirmwareManifest, rollout: string, bytes: Uint8Array, offset: number): void {
    this.manifest = m;
    this.flash.pending = { manifest: toHex(bytes), offset, rollout };
    this.flash.phase = 'downloading';
    this.lastProgressAt = Date.now();
    this.store.truncateSlot1(offset);
    this.store.save(this.flash);
    this.report('offered', m.digest);
    this.requestChunks('resume');
  }

  private chunk(digest: Uint8Array, offset: number, data: Uint8Array): void {
    const m = this.manifest;
    const p = this.flash.pending;
    if (this.flash.phase !== 'downloading' || !m || !p || !bytesEqual(digest, m.digest)) return;
    if (offset !== p.offset || offset + data.length > m.size) return; // out of order or past the end: dropped
    // Not flushed here: the next report saves the slot and this offset together (update-store.ts).
    this.store.writeSlot1(offset, data);
    p.offset += data.length;
    this.lastChunkAt = this.lastProgressAt = Date.now();
    this.sinceReport++;
    if (p.offset === m.size) return this.verifyAndInstall();
    if (this.sinceReport >= reportEvery(this.window)) this.requestChunks();
  }

  private checkStall(): void {
    if (this.flash.phase !== 'downloading') return;
    const now = Date.now();
    const abandonMs = this.o.abandonMs ?? 60_000;
    if (now - this.lastProgressAt >= abandonMs) return this.abandon(`no chunk for ${abandonMs} ms`);
    if (now - this.lastChunkAt >= this.stallMs) this.requestChunks('resume');
  }

  /**
   * Gives up the download (no longer served): idle again, so other offers are taken. What
   * slot 1 holds and its offset are kept: an offer of the same release resumes from there.
   */
  private abandon(detail: string): void {
    this.flash.phase = 'idle';
    this.store.save(this.flash);
    this.report('idle', this.manifest?.digest ?? null, 'abandoned', detail);
  }

  private requestChunks(reason?: string): void {
    this.sinceReport = 0;
    this.lastChunkAt = Date.now();
    this.report('downloading', this.manifest?.digest ?? null, reason);
  }

  private slotDigest(): string {
    return createHash('sha256').update(readFileSync(this.store.slot1)).digest('hex');
  }

  private verifyAndInstall(): void {
    const m = this.manifest!;
    if (statSync(this.store.slot1).size !== m.size || this.slotDigest() !== toHex(m.digest))
      return this.endUpdate('failed', 'digest-mismatch');
    this.report('verified', m.digest);
    this.flash.phase = 'trial-pending';
    this.store.save(this.flash);
    this.report('installing', m.digest);
    // The device resets into its bootloader to test-boot the new image.
    setImmediate(() => this.boot());
  }

  private trialBoot(): void {
    const m = this.manifest!;
    // The bootloader checks the image again: a slot changed since (or torn) never runs.
    if (this.slotDigest() !== toHex(m.digest)) return this.endUpdate('failed', 'digest-mismatch');
    this.flash.phase = 'trial-booted';
    this.store.save(this.flash);
    setTimeout(() => {
      if (this.flash.phase !== 'trial-booted') return;
      if (this.o.failTestBoot) return this.boot(); // the new image crashes: a reset before confirming
      this.store.promoteSlot1();
      this.flash.running = { version: m.version, digest: toHex(m.digest) };
      this.endUpdate('confirmed', '');
    }, this.o.selfTestMs ?? 50).unref();
  }

  private endUpdate(state: 'confirmed' | 'rolled-back' | 'failed', reason: string): void {
    const digest = this.manifest?.digest;
    if (digest) this.flash.last = { digest: toHex(digest), state, reason };
    this.flash.phase = 'idle';
    delete this.flash.pending;
    this.manifest = undefined;
    this.store.save(this.flash);
    this.report(state, digest ?? null, reason || undefined);
  }

  private report(state: UpdateState, digest: Uint8Array | null, reason?: string, detail?: string): void {
    this.flash.reports++;
    const r: UpdateReport = {
      boot: this.flash.boot,
      n: this.flash.reports,
      time: Date.now(),
      state,
      digest,
      offset: this.offset,
      window: this.window,
      chunkSize: this.chunkSize,
      running: this.flash.running.version,
      ...(reason !== undefined && { reason }),
      ...(detail !== undefined && { detail }),
    };
    // The counter must survive a reset, or the gateway takes the next reports for replays.
    this.store.save(this.flash);
    this.history.push({ state, offset: r.offset, ...(reason !== undefined && { reason }) });
    this.o.onReport?.(state, r.offset, reason);
    this.o.send(encodeSign1({ kid: deviceIdToKid(this.o.id), payload: encodeReport(r) }, this.sign));
  }
}
