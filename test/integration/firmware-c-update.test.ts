/**
 * The C update receiver (hardware/firmware/src/outpost_update.c) end to end: the C host
 * program (build/outpost-device --update-dir) on one side of a socat pty, its "flash" the
 * files of a directory; on the other side this test sends what the gateway's transfer sends
 * (protocols/firmware-transfer.ts offers and windowed chunks, each a frame of the COBS stream,
 * answered by the device's signed reports). The sender here follows gateway/firmware/README.md
 * "Transfer" itself (a `downloading` report asks for a window from its offset, `resume`
 * rewinds), so a test can cut the transfer at an exact chunk; the real gateway serving this
 * program is test/e2e/firmware-c-device.test.ts.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { SerialPort } from 'serialport';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { publicKeyFromSeed, signEd25519, verifyEd25519 } from '../../gateway/crypto/ed25519.js';
import { encodeManifest, type FirmwareManifest } from '../../protocols/firmware-manifest.js';
import { decodeReport, encodeChunk, encodeOffer, type UpdateReport } from '../../protocols/firmware-transfer.js';
import { Deframer, decodeSign1, encodeSerialFrame, sigStructure, toHex } from '../../protocols/index.js';
import { tempDir, waitFor } from '../helpers/env.js';
import { PtyPair } from '../helpers/pty.js';
import { needs } from '../helpers/system-tools.js';

const run = promisify(execFile);
const FIRMWARE = new URL('../../hardware/firmware', import.meta.url).pathname;
const DEVICE_BIN = join(FIRMWARE, 'build/outpost-device');
const CHUNK = 448; // the host program's default: a chunk message fits OUTPOST_MAX_FRAME 512

const seedOf = (k: number) => Uint8Array.from({ length: 32 }, (_, i) => (i * k + 7) & 0xff);
const DEVICE_SEED = seedOf(29);
const RELEASE_SEED = seedOf(41);
const OTHER_SEED = seedOf(53);
const devicePk = publicKeyFromSeed(DEVICE_SEED);
const releasePk = publicKeyFromSeed(RELEASE_SEED);
const IMAGE = Uint8Array.from({ length: 20_000 }, (_, i) => (i * 131 + (i >> 7) * 7) & 0xff);
const manifest: FirmwareManifest = {
  model: 'c-env',
  version: '1.3.0',
  digest: new Uint8Array(createHash('sha256').update(IMAGE).digest()),
  size: IMAGE.length,
  minVersion: '1.0.0',
  slot: 1,
  issued: 1_764_000_000_000,
};
const offerSignedBy = (seed: Uint8Array, m = manifest) =>
  encodeOffer({
    manifest: encodeManifest(m, publicKeyFromSeed(seed), (b) => signEd25519(seed, b)),
    rollout: 'r-c',
  });
/** Another release (the next rollout's): another image. */
const IMAGE_B = Uint8Array.from({ length: 6_000 }, (_, i) => (i * 97 + 5) & 0xff);
const manifestB: FirmwareManifest = {
  ...manifest,
  version: '1.4.0',
  digest: new Uint8Array(createHash('sha256').update(IMAGE_B).digest()),
  size: IMAGE_B.length,
};

/** The gateway's side of a transfer over the pty (gateway/firmware/README.md, "Transfer"). */
class Sender {
  readonly reports: UpdateReport[] = [];
  forged = 0;
  /** Chunks at and past this offset are held back (to cut a transfer where the test wants). */
  holdAt = Number.POSITIVE_INFINITY;
  /** Offered once the device gives its download up (`idle` `abandoned`): another release, served in full. */
  next?: { offer: Uint8Array; chunks: Map<number, Uint8Array>; size: number };
  private size = IMAGE.length;
  private sentUpTo = 0;
  private readonly deframer = new Deframer();

  constructor(
    private readonly port: SerialPort,
    private readonly offers: Uint8Array[],
    private chunks: Map<number, Uint8Array>,
  ) {
    port.on('data', (d: Buffer) => {
      for (const f of this.deframer.push(new Uint8Array(d))) this.onFrame(f);
    });
  }

  private send(message: Uint8Array): void {
    this.port.write(Buffer.from(encodeSerialFrame(message)));
  }

  private onFrame(frame: Uint8Array): void {
    const s = decodeSign1(frame);
    if (!s.ok) return;
    if (!verifyEd25519(devicePk, sigStructure(s.value.protectedBytes, s.value.payload), s.value.signature)) {
      this.forged++;
      return;
    }
    const d = decodeReport(s.value.payload);
    if (!d.ok) return;
    const r = d.value;
    this.reports.push(r);
    if (r.state === 'idle' && r.reason === 'abandoned' && this.next) {
      ({ chunks: this.chunks, size: this.size } = this.next);
      this.holdAt = Number.POSITIVE_INFINITY;
      this.sentUpTo = 0;
      this.send(this.next.offer);
      this.next = undefined;
    }
    if ((r.state === 'idle' || r.state === 'failed') && this.offers.length > 0) this.send(this.offers.shift()!);
    if (r.state !== 'downloading') return;
    if (r.reason === 'resume') this.sentUpTo = r.offset; // a reset or a stall: from the device's offset again
    const end = Math.min(this.size, r.offset + r.window * r.chunkSize, this.holdAt);
    for (let off = Math.max(this.sentUpTo, r.offset); off < end; off += r.chunkSize) this.send(this.chunks.get(off)!);
    this.sentUpTo = Math.max(this.sentUpTo, end);
  }
}

function chunks(tamperedIndex?: number, image = IMAGE, release = manifest): Map<number, Uint8Array> {
  const m = new Map<number, Uint8Array>();
  for (let off = 0, i = 0; off < image.length; off += CHUNK, i++) {
    const data = image.slice(off, off + CHUNK);
    if (i === tamperedIndex) data[17]! ^= 0x40; // the CRC is computed over the tampered bytes: it passes
    m.set(off, encodeChunk({ digest: release.digest, offset: off, data }));
  }
  return m;
}

interface DeviceEvent {
  event: string;
  [k: string]: unknown;
}

describe(
  'C update receiver: the host program updates itself over a pty',
  needs('make', 'cc', 'libsodium', 'socat'),
  () => {
    const cleanups: Array<() => unknown> = [];
    afterEach(async () => {
      for (const c of cleanups.splice(0).reverse()) await c();
    });
    beforeAll(async () => {
      await run('make', ['-C', FIRMWARE, '--no-print-directory', 'device'], { timeout: 120_000 });
    }, 120_000);

    async function setup(offers: Uint8Array[], chunkMap: Map<number, Uint8Array>) {
      const tmp = tempDir('outpost-fw-c-update-');
      cleanups.push(() => tmp.cleanup());
      const pty = await PtyPair.open(tmp.dir);
      cleanups.push(() => pty.unplug());
      const port = new SerialPort({ path: pty.a, baudRate: 115200, autoOpen: false, hupcl: false });
      await new Promise<void>((res, rej) => port.open((e) => (e ? rej(e) : res())));
      cleanups.push(() => new Promise<void>((res) => port.close(() => res())));
      return { dir: tmp.dir, tty: pty.b, sender: new Sender(port, offers, chunkMap) };
    }

    const events: DeviceEvent[] = [];
    function startDevice(tty: string, dir: string, extra: string[] = []) {
      const child: ChildProcess = spawn(
        DEVICE_BIN,
        [
          ...['--tty', tty, '--id', 'c-dev-up', '--seed', toHex(DEVICE_SEED), '--gateway-key', toHex(releasePk)],
          ...['--frames', '0', '--update-dir', dir, '--release-key', toHex(releasePk), '--model', 'c-env'],
          ...['--version', '1.2.0', '--timeout-ms', '30000', ...extra],
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      cleanups.push(() => child.kill('SIGKILL'));
      let text = '';
      child.stdout!.on('data', (d: Buffer) => {
        text += d.toString();
        for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n')) {
          events.push(JSON.parse(text.slice(0, nl)) as DeviceEvent);
          text = text.slice(nl + 1);
        }
      });
      let err = '';
      child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
      return { child, exited, stderr: () => err };
    }
    afterEach(() => {
      events.length = 0;
    });

    const states = (s: Sender) => s.reports.map((r) => (r.reason ? `${r.state}:${r.reason}` : r.state));
    /** Every report the device printed has reached the sender (the last ones may still be in the pty). */
    const settled = (s: Sender) =>
      waitFor(
        () => s.reports.length === events.filter((e) => e.event === 'update').length,
        5_000,
        `all reports through the pty (${states(s)})`,
      );
    const increasing = (s: Sender) => s.reports.every((r, i) => i === 0 || r.n > s.reports[i - 1]!.n);

    it('downloads in windows, is killed mid-transfer, resumes from its persisted offset, verifies, resets into the trial, confirms; slot 0 is the image (clauses: resume from persisted offset; SHA-256 before install and at trial boot; confirm)', async () => {
      const { dir, tty, sender } = await setup([offerSignedBy(RELEASE_SEED)], chunks());
      const cut = 8 * CHUNK;
      sender.holdAt = cut;
      const first = startDevice(tty, dir);
      await waitFor(
        () => sender.reports.some((r) => r.state === 'downloading' && r.offset === cut),
        15_000,
        `device at offset ${cut} (reports: ${states(sender)}; ${first.stderr()})`,
      );
      first.child.kill('SIGKILL'); // power lost mid-transfer
      await first.exited;
      const before = sender.reports.length;

      sender.holdAt = Number.POSITIVE_INFINITY;
      const second = startDevice(tty, dir);
      expect(await second.exited, second.stderr()).toBe(0);
      await settled(sender);
      expect(sender.reports[before]).toMatchObject({ state: 'downloading', reason: 'resume', offset: cut });
      expect(states(sender).slice(-4)).toEqual(['verified', 'installing', 'confirmed', 'confirmed']);
      expect(sender.reports.at(-1)).toMatchObject({ running: '1.3.0', digest: manifest.digest, offset: 0 });
      expect(states(sender).slice(0, 3)).toEqual(['idle', 'offered', 'downloading']);
      expect(increasing(sender)).toBe(true); // the counter survives the kill and the reset
      expect(sender.forged).toBe(0);
      expect(events.filter((e) => e.event === 'reset')).toHaveLength(1);
      expect(events.find((e) => e.event === 'trial')).toEqual({ event: 'trial', fails: false });
      expect(toHex(readFileSync(join(dir, 'slot0.bin')))).toBe(toHex(IMAGE));
    }, 60_000);

    it('left mid-download (its rollout aborted: no chunk comes), asks again after each stall, gives the download up after --abandon-ms (idle abandoned) and takes another release, which it downloads and confirms (clause: the C receiver gives way after an abort)', async () => {
      const { dir, tty, sender } = await setup([offerSignedBy(RELEASE_SEED)], chunks());
      const cut = 4 * CHUNK;
      sender.holdAt = cut; // the gateway stops serving here (the rollout was aborted)
      sender.next = {
        offer: offerSignedBy(RELEASE_SEED, manifestB),
        chunks: chunks(undefined, IMAGE_B, manifestB),
        size: IMAGE_B.length,
      };
      const dev = startDevice(tty, dir, ['--abandon-ms', '2500']);
      expect(await dev.exited, dev.stderr()).toBe(0);
      await settled(sender);
      const s = states(sender);
      const gaveUp = s.indexOf('idle:abandoned');
      expect(gaveUp, s.join(' ')).toBeGreaterThan(0);
      // before giving up: it asked again from its offset after each 1 s stall
      expect(s.slice(0, gaveUp).filter((x) => x === 'downloading:resume').length).toBeGreaterThanOrEqual(1);
      expect(sender.reports[gaveUp]).toMatchObject({ digest: manifest.digest, offset: cut });
      expect(s.slice(gaveUp + 1, gaveUp + 3)).toEqual(['offered', 'downloading']);
      expect(sender.reports[gaveUp + 1]).toMatchObject({ digest: manifestB.digest, offset: 0 });
      expect(s.slice(-3)).toEqual(['installing', 'confirmed', 'confirmed']);
      expect(sender.reports.at(-1)).toMatchObject({ running: '1.4.0', digest: manifestB.digest });
      expect(increasing(sender)).toBe(true);
      expect(toHex(readFileSync(join(dir, 'slot0.bin')))).toBe(toHex(IMAGE_B));
    }, 60_000);

    it('refuses a manifest of another release key, then a tampered image (a chunk altered, its CRC recomputed): failed digest-mismatch, slot 0 untouched (clauses: tampered image rejected; signed manifest)', async () => {
      const { dir, tty, sender } = await setup([offerSignedBy(OTHER_SEED), offerSignedBy(RELEASE_SEED)], chunks(3));
      const dev = startDevice(tty, dir);
      expect(await dev.exited, dev.stderr()).toBe(0);
      await settled(sender);
      const s = states(sender);
      expect(s.slice(0, 3)).toEqual(['idle', 'failed:unknown-key', 'offered']);
      expect(s.at(-1)).toBe('failed:digest-mismatch');
      expect(s).not.toContain('verified');
      expect(sender.reports.at(-1)).toMatchObject({ running: '1.2.0', digest: manifest.digest });
      expect(events.filter((e) => e.event === 'reset')).toEqual([]);
      expect(readFileSync(join(dir, 'slot0.bin'), 'utf8')).toBe('factory image 1.2.0\n');
    }, 60_000);

    it('a trial image that never confirms is rolled back at the next reset (clause: rollback)', async () => {
      const { dir, tty, sender } = await setup([offerSignedBy(RELEASE_SEED)], chunks());
      const dev = startDevice(tty, dir, ['--fail-trial', '1']);
      expect(await dev.exited, dev.stderr()).toBe(0);
      await settled(sender);
      expect(states(sender).slice(-4)).toEqual([
        'verified',
        'installing',
        'rolled-back:test-boot-not-confirmed',
        'rolled-back:test-boot-not-confirmed',
      ]);
      expect(sender.reports.at(-1)).toMatchObject({ running: '1.2.0' });
      expect(events.filter((e) => e.event === 'reset')).toHaveLength(2); // into the trial, and the crash
      expect(readFileSync(join(dir, 'slot0.bin'), 'utf8')).toBe('factory image 1.2.0\n');
    }, 60_000);
  },
);
