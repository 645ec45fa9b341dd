/**
 * firmware-sim's updatable device, fed directly (no network): refusals (release key, model,
 * downgrade, digest), resume from the persisted offset after a "power loss" (a new device
 * object on the same flash directory), confirm, rollback of an image whose test boot fails, and
 * a download no longer served giving way to another release or being given up.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { publicKeyFromSeed, signEd25519 } from '../../gateway/crypto/ed25519.js';
import { reportEvery, UpdatableDevice } from '../../firmware-sim/update.js';
import { encodeManifest, type FirmwareManifest } from '../../protocols/firmware-manifest.js';
import { decodeReport, encodeChunk, encodeOffer, type UpdateReport } from '../../protocols/firmware-transfer.js';
import { decodeSign1 } from '../../protocols/index.js';
import { testTempDir, waitFor } from '../helpers/env.js';

const releaseSeed = randomBytes(32);
const releaseKey = publicKeyFromSeed(releaseSeed);
const image = randomBytes(20_000);
const digest = new Uint8Array(createHash('sha256').update(image).digest());
const manifestFor = (m: Partial<FirmwareManifest> = {}, seed: Uint8Array = releaseSeed) =>
  encodeManifest(
    { model: 'env-1', version: '1.1.0', digest, size: image.length, minVersion: '1.0.0', slot: 1, issued: 1, ...m },
    releaseKey,
    (msg) => signEd25519(seed, msg),
  );

function device(dir: string, opts: { failTestBoot?: boolean; stallMs?: number; abandonMs?: number } = {}) {
  const reports: UpdateReport[] = [];
  const d = new UpdatableDevice({
    id: 'sim-0001',
    seed: new Uint8Array(32).fill(3),
    model: 'env-1',
    version: '1.0.0',
    releaseKey,
    dir,
    chunkSize: 1000,
    window: 4,
    selfTestMs: 10,
    ...opts,
    send: (bytes) => {
      const s = decodeSign1(bytes);
      if (!s.ok) throw new Error(s.error.message);
      const r = decodeReport(s.value.payload);
      if (!r.ok) throw new Error(r.error.message);
      reports.push(r.value);
    },
  });
  d.boot();
  return { d, reports, last: () => reports.at(-1)! };
}

/** Sends chunks the way the gateway serves them: from the device's offset, `n` chunks or to the end. */
function feed(d: UpdatableDevice, n = Number.POSITIVE_INFINITY, data: Uint8Array = image, of = digest): void {
  for (let i = 0; i < n && d.phase === 'downloading'; i++) {
    const at = d.offset;
    d.receive(encodeChunk({ digest: of, offset: at, data: data.subarray(at, Math.min(at + 1000, data.length)) }));
  }
}

/** A later release, 1.2.0 (another image). */
const image2 = randomBytes(9_000);
const digest2 = new Uint8Array(createHash('sha256').update(image2).digest());
const manifest2 = () => manifestFor({ version: '1.2.0', digest: digest2, size: image2.length });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('firmware-sim updatable device', () => {
  it('downloads, verifies, test-boots and confirms', async () => {
    const dir = testTempDir();
    const { d, reports } = device(dir);
    d.receive(encodeOffer({ manifest: manifestFor(), rollout: 'r' }));
    expect(reports.map((r) => r.state)).toEqual(['offered', 'downloading']);
    feed(d);
    await waitFor(() => d.running.version === '1.1.0', 5000);
    expect(reports.map((r) => r.state).slice(-3)).toEqual(['verified', 'installing', 'confirmed']);
    expect(readFileSync(join(dir, 'slot0.bin')).equals(image)).toBe(true);
    d.stop();
  });

  for (const [what, manifest, code] of [
    ['another key', () => manifestFor({}, randomBytes(32)), 'bad-signature'],
    ['a wrong model', () => manifestFor({ model: 'press-1' }), 'wrong-model'],
    ['a downgrade', () => manifestFor({ version: '0.9.0', minVersion: '0.1.0' }), 'downgrade'],
    ['a too old base', () => manifestFor({ minVersion: '1.0.5' }), 'too-old'],
  ] as const)
    it(`refuses a manifest with ${what}`, () => {
      const { d, last } = device(testTempDir());
      d.receive(encodeOffer({ manifest: manifest(), rollout: 'r' }));
      expect(last().state).toBe('failed');
      expect(last().reason).toBe(code);
      expect(d.phase).toBe('idle');
      d.stop();
    });

  it('refuses an image whose digest does not match (chunks intact on the wire) and keeps running the old one', () => {
    const { d, last } = device(testTempDir());
    d.receive(encodeOffer({ manifest: manifestFor(), rollout: 'r' }));
    const tampered = Uint8Array.from(image);
    tampered[12_345]! ^= 1;
    feed(d, Number.POSITIVE_INFINITY, tampered);
    expect(last()).toMatchObject({ state: 'failed', reason: 'digest-mismatch' });
    expect(d.running.version).toBe('1.0.0');
    d.stop();
  });

  it('reports every three quarters of its window, a quarter (at least a chunk) left in flight', () => {
    expect([1, 2, 3, 4, 8, 12, 48, 64].map(reportEvery)).toEqual([1, 1, 2, 3, 6, 9, 36, 48]);
    const { d, reports } = device(testTempDir());
    d.receive(encodeOffer({ manifest: manifestFor(), rollout: 'r' }));
    feed(d, 10);
    // The request that takes the offer (resume, from 0), then one every 3 chunks of 1 000 bytes.
    expect(reports.filter((r) => r.state === 'downloading').map((r) => [r.offset, r.reason])).toEqual([
      [0, 'resume'],
      [3000, undefined],
      [6000, undefined],
      [9000, undefined],
    ]);
    d.stop();
  });

  it('resumes from its persisted offset after a power loss', async () => {
    const dir = testTempDir();
    const a = device(dir);
    a.d.receive(encodeOffer({ manifest: manifestFor(), rollout: 'r' }));
    feed(a.d, 7);
    // The offset is persisted with each report (every 3 chunks of a window of 4): the last
    // reported is 6000; the seventh chunk was written but not vouched for.
    expect(a.last()).toMatchObject({ state: 'downloading', offset: 6000 });
    a.d.stop(); // power gone: only the flash directory remains
    const b = device(dir);
    expect(b.d.offset).toBe(6000);
    expect(readFileSync(join(dir, 'slot1.bin')).equals(image.subarray(0, 6000))).toBe(true);
    b.d.connected();
    expect(b.last()).toMatchObject({ state: 'downloading', offset: 6000, reason: 'resume' });
    feed(b.d);
    await waitFor(() => b.d.running.version === '1.1.0', 5000);
    b.d.stop();
  });

  it('rolls back when the new image does not confirm', async () => {
    const { d, reports } = device(testTempDir(), { failTestBoot: true });
    d.receive(encodeOffer({ manifest: manifestFor(), rollout: 'r' }));
    feed(d);
    await waitFor(() => reports.at(-1)?.state === 'rolled-back', 5000);
    expect(d.running.version).toBe('1.0.0');
    // Offered again, it says how that image ended rather than trying again.
    d.receive(encodeOffer({ manifest: manifestFor(), rollout: 'r' }));
    expect(reports.at(-1)?.state).toBe('rolled-back');
    d.stop();
  });

  it('a download no longer served (its rollout aborted) gives way to an offer of another release; while it is served, it does not', async () => {
    const { d, reports } = device(testTempDir(), { stallMs: 300 });
    d.receive(encodeOffer({ manifest: manifestFor(), rollout: 'r-aborted' }));
    feed(d, 3);
    // Chunks are flowing: the other offer is not taken (one update at a time).
    d.receive(encodeOffer({ manifest: manifest2(), rollout: 'r-later' }));
    expect(reports.map((r) => r.state)).not.toContain('idle');
    expect(d.offset).toBe(3000);
    await sleep(400); // no chunk since: the gateway stopped serving it
    const before = reports.length;
    d.receive(encodeOffer({ manifest: manifest2(), rollout: 'r-later' }));
    expect(reports.slice(before).map((r) => [r.state, r.reason])).toEqual([
      ['idle', 'abandoned'],
      ['offered', undefined],
      ['downloading', 'resume'],
    ]);
    expect(reports.at(-1)).toMatchObject({ offset: 0, digest: digest2 });
    feed(d, Number.POSITIVE_INFINITY, image2, digest2);
    await waitFor(() => d.running.version === '1.2.0', 5000);
    expect(reports.at(-1)).toMatchObject({ state: 'confirmed', digest: digest2 });
    d.stop();
  });

  it('a download with no chunk for abandonMs is given up: idle, keeping its bytes; the same release offered again resumes from there', async () => {
    const dir = testTempDir();
    const { d, reports } = device(dir, { stallMs: 200, abandonMs: 700 });
    d.receive(encodeOffer({ manifest: manifestFor(), rollout: 'r-1' }));
    feed(d, 4);
    await waitFor(() => d.phase === 'idle', 5000);
    expect(reports.at(-1)).toMatchObject({ state: 'idle', reason: 'abandoned', offset: 4000, digest });
    // Before it gave up it asked to resume (the stall timer), unanswered.
    expect(reports.some((r) => r.state === 'downloading' && r.reason === 'resume' && r.offset === 4000)).toBe(true);
    const before = reports.length;
    d.receive(encodeOffer({ manifest: manifestFor(), rollout: 'r-2' }));
    expect(reports.slice(before).map((r) => [r.state, r.reason, r.offset])).toEqual([
      ['offered', undefined, 4000],
      ['downloading', 'resume', 4000],
    ]);
    feed(d);
    await waitFor(() => d.running.version === '1.1.0', 5000);
    expect(readFileSync(join(dir, 'slot0.bin')).equals(image)).toBe(true);
    d.stop();
  });
});
