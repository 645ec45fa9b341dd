/**
 * Firmware updates end to end, real processes: a `gateway start` child with a policy file
 * naming a release key, `gateway firmware add|list|rollout|status` as CLI children, and
 * `firmware-sim update` children as the devices, over the gateway's real aedes broker.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { publicKeyFromSeed, signEd25519 } from '../../gateway/crypto/ed25519.js';
import { queueRelease } from '../../gateway/firmware/inbox.js';
import { encodeManifest } from '../../protocols/firmware-manifest.js';
import { publicKeyToDidKey, toHex } from '../../protocols/index.js';
import { waitFor } from '../helpers/env.js';
import {
  addRelease,
  deviceBlocks,
  finalOf,
  startFirmwareSite as startSite,
  startRollout as rollout,
  rolloutStatus as status,
  startUpdateSim as startSim,
} from '../helpers/firmware.js';
import { gatewayCli } from '../helpers/process.js';

describe('firmware update over MQTT', () => {
  it('a release is added, listed, rolled out and confirmed by the devices; status shows it', {
    timeout: 180_000,
  }, async () => {
    const site = await startSite(3);
    const image = await addRelease(site, 150_000);
    const list = await gatewayCli(['firmware', 'list', '--json', '--config', site.cfg]);
    const rel = (JSON.parse(list.stdout) as { releases: { version: string; digest: string; complete: boolean }[] })
      .releases[0]!;
    expect(rel).toMatchObject({ version: '1.1.0', complete: true });
    expect(rel.digest).toBe(createHash('sha256').update(image).digest('hex'));
    const sim = startSim(site);
    await rollout(site, 'r-all');
    await waitFor(
      () => site.devices.every((d) => finalOf(sim, d)?.state === 'confirmed'),
      120_000,
      () => JSON.stringify(sim.lines.slice(-10)),
    );
    for (const d of site.devices)
      expect(readFileSync(join(site.dir, 'flash', d, 'slot0.bin')).equals(image)).toBe(true);
    await waitFor(async () => (await status(site, 'r-all')).state === 'done', 30_000);
    const st = await status(site, 'r-all');
    expect(Object.values(st.devices).map((d) => d.state)).toEqual(['confirmed', 'confirmed', 'confirmed']);
    // The log holds each device's state changes, not every step of its download: a 150 kB
    // download ends well within the runner's 10 s between progress blocks.
    const blocks = await deviceBlocks(site, 'r-all');
    for (const d of site.devices)
      expect(blocks.get(d), d).toEqual(['offered', 'downloading', 'verified', 'installing', 'confirmed']);
  });

  it('a release key the policy file does not name and a tampered image are refused; a device trusting another key refuses the manifest', {
    timeout: 120_000,
  }, async () => {
    const site = await startSite(1);
    const otherKey = join(site.dir, 'other.key');
    writeFileSync(otherKey, `${toHex(randomBytes(32))}\n`);
    writeFileSync(join(site.dir, 'x.bin'), randomBytes(1000));
    const r = await gatewayCli([
      'firmware',
      'add',
      join(site.dir, 'x.bin'),
      '--version',
      '1.1.0',
      '--model',
      'env-1',
      '--release-key',
      otherKey,
      '--config',
      site.cfg,
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/not named under releaseKeys/);
    // A tampered image (its manifest signed by the release key for other bytes) is refused by the gateway.
    const seed = Uint8Array.from(Buffer.from(readFileSync(site.releaseKeyFile, 'utf8').trim(), 'hex'));
    const good = randomBytes(5000);
    const tampered = Uint8Array.from(good);
    tampered[100]! ^= 1;
    writeFileSync(join(site.dir, 'tampered.bin'), tampered);
    const manifest = encodeManifest(
      {
        model: 'env-1',
        version: '1.0.5',
        digest: new Uint8Array(createHash('sha256').update(good).digest()),
        size: good.length,
        minVersion: '0.0.0',
        slot: 1,
        issued: Date.now(),
      },
      publicKeyFromSeed(seed),
      (m) => signEd25519(seed, m),
    );
    const queued = queueRelease(join(site.dir, 'data'), manifest, join(site.dir, 'tampered.bin'));
    const reason = queued.replace(/\.manifest$/, '.reason');
    await waitFor(() => existsSync(reason), 30_000);
    expect(readFileSync(reason, 'utf8')).toMatch(/SHA-256 does not match/);
    await addRelease(site, 10_000);
    const listed = await gatewayCli(['firmware', 'list', '--json', '--config', site.cfg]);
    expect((JSON.parse(listed.stdout) as { releases: { version: string }[] }).releases.map((r) => r.version)).toEqual([
      '1.1.0',
    ]);
    const sim = startSim(site, [], publicKeyToDidKey(publicKeyFromSeed(randomBytes(32))));
    await rollout(site, 'r-key');
    await waitFor(() => finalOf(sim, site.devices[0]!)?.state === 'failed', 60_000);
    expect(finalOf(sim, site.devices[0]!)?.reason).toBe('unknown-key');
    await waitFor(async () => (await status(site, 'r-key')).devices[site.devices[0]!]?.state === 'failed', 30_000);
    expect(readFileSync(join(site.dir, 'flash', site.devices[0]!, 'slot0.bin'), 'utf8')).toMatch(
      /^factory image 1\.0\.0/,
    );
  });

  it('power loss mid-transfer: the device resumes from its persisted offset and ends confirmed', {
    timeout: 180_000,
  }, async () => {
    const site = await startSite(1);
    const dev = site.devices[0]!;
    const image = await addRelease(site, 400_000);
    const args = ['--chunk', '2048', '--window', '4'];
    const first = startSim(site, args);
    await rollout(site, 'r-power');
    await waitFor(() => first.lines.some((l) => l.state === 'downloading' && l.offset > 100_000), 60_000);
    first.child.kill('SIGKILL');
    await new Promise((r) => first.child.once('exit', r));
    const held = (
      JSON.parse(readFileSync(join(site.dir, 'flash', dev, 'update.json'), 'utf8')) as {
        pending: { offset: number };
      }
    ).pending.offset;
    expect(held).toBeGreaterThan(100_000);
    expect(held).toBeLessThan(image.length);
    const second = startSim(site, args);
    await waitFor(
      () => finalOf(second, dev)?.state === 'confirmed',
      120_000,
      () => JSON.stringify(second.lines.slice(-5)),
    );
    // Its first request after the reboot is from where it was, not from zero.
    expect(second.lines.find((l) => l.state === 'downloading')).toMatchObject({ offset: held, reason: 'resume' });
    expect(readFileSync(join(site.dir, 'flash', dev, 'slot0.bin')).equals(image)).toBe(true);
  });

  it('50 devices, canary 2, steps 20%,100%, 10% failing their test boot: the rollout halts at the step where failures exceed the threshold; failed devices roll back; nothing is offered past it', {
    timeout: 300_000,
  }, async () => {
    const site = await startSite(50);
    await addRelease(site, 20_000);
    // Stage 1 (20 % = sim-0001..0010) holds two of the five failing devices: 2 of 10 > 10 %.
    const failing = ['sim-0004', 'sim-0008', 'sim-0020', 'sim-0030', 'sim-0040'];
    const sim = startSim(site, ['--fail-test-boot', failing.join(',')]);
    await waitFor(() => new Set(sim.lines.map((l) => l.device)).size === 50, 120_000, 'every device connected');
    await rollout(site, 'r-halt', ['--canary', '2', '--steps', '20%,100%', '--halt-on-failure', '10%']);
    await waitFor(async () => (await status(site, 'r-halt')).state === 'halted', 180_000);
    const st = await status(site, 'r-halt');
    expect(st.stage).toBe(1);
    expect(st.devices['sim-0004']!.state).toBe('rolled-back');
    expect(st.devices['sim-0008']!.state).toBe('rolled-back');
    expect(st.devices['sim-0001']!.state).toBe('confirmed');
    expect(finalOf(sim, 'sim-0004')).toMatchObject({ state: 'rolled-back' });
    const past = site.devices.slice(10);
    for (const d of past) {
      expect(st.devices[d]!.state).toBe('pending');
      // Only its hello (again after a reconnect): never an offer.
      expect(new Set(sim.lines.filter((l) => l.device === d).map((l) => l.state))).toEqual(new Set(['idle']));
    }
  });
});
