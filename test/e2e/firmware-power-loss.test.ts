/**
 * Must-show: power loss at a random byte on 20 devices. Twenty `firmware-sim update` devices
 * (one process) download a release over MQTT from a real `gateway start` child; the process is
 * SIGKILLed (every device loses power at once) at seeded random points of the download and
 * started again on the same flash, several times. Each device resumes from the offset it
 * persisted (never from 0), ends confirmed, and no device ever runs an image whose digest
 * does not match the signed release: at every power loss what runs is the factory image or
 * the release's exact bytes, and the bytes the slot vouches for are the release's.
 * FW_POWER_SEED=N replays the random choices; failures name the seed. It runs with the
 * devices' flash flushed at every save (`--flash-sync fsync`, the default) and with the same
 * writes unflushed (`none`, the benches' setting): a SIGKILL keeps what was written either way.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { UpdateFlash } from '../../firmware-sim/update-store.js';
import { waitFor } from '../helpers/env.js';
import {
  addRelease,
  type FirmwareSite,
  finalOf,
  rolloutStatus,
  startFirmwareSite,
  startRollout,
  startUpdateSim,
  type UpdateSim,
} from '../helpers/firmware.js';

const DEVICES = 20;
const SIZE = 128 * 1024;
// A window of 3: a device reports, and saves its offset, every 2 chunks (firmware-sim's
// reportEvery), so every device has an offset to resume from before the first ones finish and
// the first power loss can find all 20 mid-download (with 4, every 3 chunks, a loaded CI box
// once let a device finish before the slowest had saved).
const ARGS = ['--chunk', '4096', '--window', '3'];
/** Closer than this to the end, a device may reach its trial boot before the kill lands (see below). */
const NEAR_END = 16 * 1024;

/** mulberry32: small, seedable. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

const flashOf = (site: FirmwareSite, d: string): UpdateFlash | undefined => {
  const f = join(site.dir, 'flash', d, 'update.json');
  return existsSync(f) ? (JSON.parse(readFileSync(f, 'utf8')) as UpdateFlash) : undefined;
};

/**
 * Safe to cut: no device in (or about to enter) its trial boot. A power loss while the new
 * image runs its self-test unconfirmed reverts to the old image by design (MCUboot's test
 * boot; the 50-device test shows rollbacks), which is not what this test is about.
 */
const safeToCut = (site: FirmwareSite, devices: string[]): boolean =>
  devices.every((d) => {
    const f = flashOf(site, d);
    return !f || f.phase === 'idle' || (f.phase === 'downloading' && f.pending!.offset < SIZE - NEAR_END);
  });

describe('firmware power loss', () => {
  it.each(['fsync', 'none'] as const)(
    'power loss at a random byte on 20 devices (--flash-sync %s): each resumes from its offset, ends confirmed, and no device ever runs an image whose digest or signature does not match',
    {
      timeout: 150_000,
    },
    async (sync) => {
      const seed = Number(process.env.FW_POWER_SEED ?? Math.floor(Math.random() * 2 ** 31));
      try {
        await run(seed, [...ARGS, '--flash-sync', sync]);
      } catch (e) {
        (e as Error).message = `[FW_POWER_SEED=${seed}] ${(e as Error).message}`;
        throw e;
      }
    },
  );
});

async function run(seed: number, args: string[]): Promise<void> {
  const random = rng(seed);
  const site = await startFirmwareSite(DEVICES);
  const image = await addRelease(site, SIZE);
  const digest = createHash('sha256').update(image).digest('hex');
  const runs: UpdateSim[] = [startUpdateSim(site, args)];
  await startRollout(site, 'r-power');
  const kills = 3 + Math.floor(random() * 3);
  /** Per device: the offset it held at the last power loss, checked against its first request after. */
  let cut = new Map<string, number>();
  /** Devices seen resuming a download cut by a power loss. */
  const resumed = new Set<string>();
  for (let k = 0; k < kills; k++) {
    const sim = runs.at(-1)!;
    // Every device cut mid-download at the last power loss asks from where it was, not from 0.
    await waitFor(
      () => [...cut.keys()].every((d) => sim.lines.some((l) => l.device === d && l.state === 'downloading')),
      60_000,
      () => `run ${runs.length}: devices cut mid-download that did not ask to resume: ${[...cut.keys()]}`,
    );
    for (const [d, held] of cut) {
      const first = sim.lines.find((l) => l.device === d && l.state === 'downloading')!;
      expect(first.offset, `${d} after power loss ${k}`).toBeGreaterThanOrEqual(held);
      expect(first.offset, d).toBeGreaterThan(0);
      expect(first.reason).toBe('resume');
      resumed.add(d);
    }
    // A random device still downloading, and a random byte of its image ahead of it.
    const phases = () => site.devices.map((d) => flashOf(site, d)?.phase);
    await waitFor(
      () => phases().includes('downloading') || (k > 0 && phases().every((p) => p === 'idle')),
      60_000,
      'a download under way',
    );
    const downloading = site.devices.filter((d) => flashOf(site, d)?.phase === 'downloading');
    const victim = downloading[Math.floor(random() * downloading.length)];
    if (victim === undefined) break; // every device done before this power loss
    const from = flashOf(site, victim)!.pending!.offset;
    // The first power loss finds every device mid-download (each then has an offset to resume
    // from): a byte in the first half; later ones anywhere before the end.
    const span = k === 0 ? SIZE / 2 - from : SIZE - NEAR_END - from;
    const target = from + Math.floor(random() * Math.max(0, span));
    const started = () => k > 0 || site.devices.every((d) => (flashOf(site, d)?.pending?.offset ?? 0) > 0);
    await waitFor(
      () => started() && (flashOf(site, victim)?.pending?.offset ?? SIZE) >= target && safeToCut(site, site.devices),
      60_000,
      () => `power loss ${k}: ${victim} reaching byte ${target}`,
    );
    sim.child.kill('SIGKILL');
    await new Promise((r) => sim.child.once('exit', r));
    // What each device holds at the power loss: it runs the factory image or the exact release,
    // and the bytes its offset vouches for are the release's.
    const next = new Map<string, number>();
    for (const d of site.devices) {
      const f = flashOf(site, d);
      if (!f) continue;
      expect([null, digest], `${d} runs`).toContain(f.running.digest);
      if (f.running.digest === digest)
        expect(readFileSync(join(site.dir, 'flash', d, 'slot0.bin')).equals(image), d).toBe(true);
      if (f.phase === 'downloading') {
        const held = f.pending!.offset;
        const slot = readFileSync(join(site.dir, 'flash', d, 'slot1.bin'));
        expect(slot.length, d).toBeGreaterThanOrEqual(held);
        expect(slot.subarray(0, held).equals(image.subarray(0, held)), `${d} slot bytes`).toBe(true);
        expect(held, `${d} offset never goes back`).toBeGreaterThanOrEqual(cut.get(d) ?? 0);
        if (held > 0) next.set(d, held);
      }
    }
    cut = next;
    await new Promise((r) => setTimeout(r, Math.floor(random() * 500)));
    runs.push(startUpdateSim(site, args));
  }
  const last = runs.at(-1)!;
  await waitFor(
    () => site.devices.every((d) => finalOf(last, d)?.state === 'confirmed'),
    90_000,
    () => `after ${runs.length - 1} power losses: ${JSON.stringify(last.lines.slice(-5))}`,
  );
  for (const [d, held] of cut) {
    const first = last.lines.find((l) => l.device === d && l.state === 'downloading')!;
    expect(first.offset, d).toBeGreaterThanOrEqual(held);
    resumed.add(d);
  }
  expect(runs.length - 1, 'power losses').toBeGreaterThanOrEqual(1);
  expect(resumed.size, 'devices that resumed a cut download').toBe(DEVICES);
  for (const sim of runs)
    expect(sim.lines.filter((l) => l.state === 'failed' || l.state === 'rolled-back')).toEqual([]);
  for (const d of site.devices) {
    expect(flashOf(site, d)!.running.digest, d).toBe(digest);
    expect(readFileSync(join(site.dir, 'flash', d, 'slot0.bin')).equals(image), d).toBe(true);
  }
  await waitFor(async () => (await rolloutStatus(site, 'r-power')).state === 'done', 30_000, 'rollout done');
  const st = await rolloutStatus(site, 'r-power');
  expect(new Set(Object.values(st.devices).map((d) => d.state))).toEqual(new Set(['confirmed']));
}
