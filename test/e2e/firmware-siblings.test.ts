/**
 * A rollout carried on by a sibling, real processes: two gateways syncing over TCP (configured
 * peers), the release and the rollout logged on gw-0, whose devices download part of the image
 * before gw-0 is SIGKILLed; the devices (a firmware-sim process, power lost with the gateway)
 * come back on gw-1, which serves the rest of the image from its synced copy and carries the
 * rollout to the end. Restarted, gw-0 shows the same `gateway firmware status`.
 * An operator's pause and abort made on one gateway take effect on the other, which serves
 * the devices: paused, it offers nothing; aborted, it stops serving a download.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, expect, it, onTestFinished } from 'vitest';
import { generateManifest, writeManifest } from '../../firmware-sim/manifest.js';
import { publicKeyFromSeed } from '../../gateway/crypto/ed25519.js';
import { fromHex, toHex } from '../../protocols/index.js';
import type { TestDevice } from '../helpers/devices.js';
import { testTempDir, waitFor } from '../helpers/env.js';
import { writeReleaseKey } from '../helpers/firmware.js';
import { gatewayCli, startGatewayProcess, stopGatewayProcess, writeSiblingConfigs } from '../helpers/process.js';

const simBin = new URL('../../bin/firmware-sim.js', import.meta.url).pathname;

/** The image of the controls test: large enough that no device finishes before it is cut. */
const IMAGE_CTL = 2_000_000;

interface ReportLine {
  device: string;
  state: string;
  offset: number;
  reason?: string;
}

/**
 * Two sibling gateway processes (configured peers over TCP) with 3 firmware-sim devices
 * enrolled and a release 1.1.0 of `imageBytes` added on gw-0; `sim(i)` runs the devices against
 * gw-i's broker (a download of 2 KiB chunks, `window` of them at a time).
 */
async function siblingSite(imageBytes = 300_000) {
  const dir = testTempDir('outpost-fw-sib-');
  const fleet = generateManifest({ devices: 3 });
  const keys = join(dir, 'fleet.json');
  writeManifest(keys, fleet);
  const { releaseKeyFile, releaseDid, policy } = writeReleaseKey(dir);
  const devices = fleet.devices.map(
    (d) => ({ id: d.id, publicKeyHex: toHex(publicKeyFromSeed(fromHex(d.secretKey)!)) }) as TestDevice,
  );
  const cfgs = await writeSiblingConfigs(devices, 2);
  for (const c of cfgs) {
    onTestFinished(c.cleanup);
    appendFileSync(c.file, `\nsimulate: { devices: 0 }\npolicy: { file: ${JSON.stringify(policy)} }\n`);
  }
  const gws = [await startGatewayProcess(cfgs[0]!.file), await startGatewayProcess(cfgs[1]!.file)];
  onTestFinished(async () => {
    for (const g of gws) await stopGatewayProcess(g);
  });
  const image = randomBytes(imageBytes);
  writeFileSync(join(dir, 'image.bin'), image);
  const cli = (args: string[], gw = 0) => gatewayCli([...args, '--config', cfgs[gw]!.file]);
  const add = await cli([
    'firmware',
    'add',
    join(dir, 'image.bin'),
    '--version',
    '1.1.0',
    '--model',
    'env-1',
    '--release-key',
    releaseKeyFile,
    '--wait',
    '60',
  ]);
  expect(add.stderr).toBe('');
  /** `firmware status ID --json` on gw-i, as text (to compare) and parsed. */
  const statusOf = async (id: string, gw: number) => {
    const r = await cli(['firmware', 'status', id, '--json'], gw);
    return {
      text: r.stdout,
      parsed: JSON.parse(r.stdout) as { state: string; devices: Record<string, { state: string }> }[],
    };
  };
  /** gw-i holds the whole image and rollout `id`. */
  const holds = async (gw: number, id: string) => {
    const l = JSON.parse((await cli(['firmware', 'list', '--json'], gw)).stdout) as {
      releases: { version: string; complete: boolean }[];
    };
    return (
      l.releases.some((r) => r.version === '1.1.0' && r.complete) &&
      (JSON.parse((await cli(['firmware', 'status', '--json'], gw)).stdout) as { id: string }[]).some(
        (r) => r.id === id,
      )
    );
  };
  const sims: ChildProcess[] = [];
  const lines: ReportLine[] = [];
  const sim = (gw: number, window = 2): ChildProcess => {
    const child = spawn(
      process.execPath,
      [
        simBin,
        'update',
        '--keys',
        keys,
        '--broker',
        `mqtt://127.0.0.1:${gws[gw]!.port}`,
        '--gateway-id',
        `gw-${gw}`,
        '--release-key',
        releaseDid,
        '--state',
        join(dir, 'flash'),
        '--chunk',
        '2048',
        '--window',
        String(window),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    createInterface({ input: child.stdout! }).on('line', (l) => lines.push(JSON.parse(l) as ReportLine));
    sims.push(child);
    return child;
  };
  onTestFinished(() => {
    for (const c of sims) if (c.exitCode === null) c.kill('SIGKILL');
  });
  /** What a device holds of its download (its persisted offset), -1 when none. */
  const held = (device: string): number =>
    (JSON.parse(readFileSync(join(dir, 'flash', device, 'update.json'), 'utf8')) as { pending?: { offset: number } })
      .pending?.offset ?? -1;
  return { dir, fleet, cfgs, gws, image, cli, statusOf, holds, sim, sims, lines, held };
}

describe('firmware rollout across siblings', () => {
  it('a sibling carries a rollout on when the gateway that started it dies; status is the same on both', {
    timeout: 300_000,
  }, async () => {
    const { dir, fleet, cfgs, gws, image, cli, statusOf, holds, sim, lines } = await siblingSite();
    const ro = await cli(['firmware', 'rollout', '1.1.0', '--devices', 'sim-*', '--id', 'r-sib', '--wait', '60']);
    expect(ro.stderr).toBe('');
    // Carrying on needs what sync brings: gw-1 holds the whole image and the rollout before the
    // devices start downloading from gw-0 (under load sync may lag a download; without them no
    // gateway could go on).
    await waitFor(() => holds(1, 'r-sib'), 120_000, 'gw-1 holds the release and the rollout');
    const first = sim(0);
    await waitFor(
      () => lines.some((l) => l.state === 'downloading' && l.offset > 20_000),
      120_000,
      'a download under way',
    );
    gws[0]!.child.kill('SIGKILL');
    first.kill('SIGKILL');
    await new Promise((r) => gws[0]!.child.once('exit', r));
    const cut = lines.length;
    const mid = lines.find((l) => l.state === 'downloading' && l.offset > 20_000)!;
    sim(1);
    await waitFor(
      () => fleet.devices.every((d) => lines.slice(cut).some((l) => l.device === d.id && l.state === 'confirmed')),
      180_000,
      () => JSON.stringify(lines.slice(-6)),
    );
    // That device went on at gw-1 from where it was (its offset survived the power loss), not from zero.
    const resumed = lines.slice(cut).find((l) => l.device === mid.device)!;
    expect(resumed.state).toBe('downloading');
    expect(resumed.offset).toBeGreaterThanOrEqual(mid.offset);
    for (const d of fleet.devices) expect(readFileSync(join(dir, 'flash', d.id, 'slot0.bin')).equals(image)).toBe(true);
    await waitFor(async () => (await statusOf('r-sib', 1)).parsed[0]?.state === 'done', 60_000);
    gws[0] = await startGatewayProcess(cfgs[0]!.file);
    // The CLI reads the log beside the running gateway: gw-0 catches up through sync.
    await waitFor(
      async () => (await statusOf('r-sib', 0)).text === (await statusOf('r-sib', 1)).text,
      120_000,
      'the same status on both',
    );
    const st = (await statusOf('r-sib', 0)).parsed[0]!;
    expect(st.state).toBe('done');
    expect(Object.values(st.devices).map((d) => d.state)).toEqual(['confirmed', 'confirmed', 'confirmed']);
  });

  it('a pause made on gw-0 holds gw-1 (which serves the devices) from offering; resumed, gw-1 serves them; an abort made on gw-0 stops gw-1 serving a download; status is the same on both', {
    timeout: 240_000,
  }, async () => {
    const { fleet, cli, statusOf, holds, sim, sims, lines, held } = await siblingSite(IMAGE_CTL);
    const ids = fleet.devices.map((d) => d.id);
    const control = async (action: string) => {
      const r = await cli(['firmware', action, 'r-ctl', '--wait', '30']);
      expect(r.stderr).toBe('');
    };
    const on1 = async (state: string) =>
      waitFor(async () => (await statusOf('r-ctl', 1)).parsed[0]?.state === state, 60_000, `gw-1 says ${state}`);
    const sameOnBoth = () =>
      waitFor(
        async () => (await statusOf('r-ctl', 0)).text === (await statusOf('r-ctl', 1)).text,
        60_000,
        'the same status on both',
      );
    expect(
      (await cli(['firmware', 'rollout', '1.1.0', '--devices', 'sim-*', '--id', 'r-ctl', '--wait', '60'])).stderr,
    ).toBe('');
    await control('pause');
    await waitFor(() => holds(1, 'r-ctl'), 120_000, 'gw-1 holds the release and the rollout');
    await on1('paused');
    // The devices come to gw-1 (their hello is an idle report: a running rollout would offer at once).
    sim(1, 1);
    await waitFor(() => ids.every((d) => lines.some((l) => l.device === d)), 60_000, 'every device heard');
    await new Promise((r) => setTimeout(r, 3000));
    expect(new Set(lines.map((l) => l.state))).toEqual(new Set(['idle'])); // nothing offered
    await sameOnBoth();
    expect(Object.values((await statusOf('r-ctl', 0)).parsed[0]!.devices).map((d) => d.state)).toEqual(
      ids.map(() => 'pending'),
    );

    await control('resume');
    await waitFor(() => ids.every((d) => held(d) > 0), 60_000, 'gw-1 serving every device');
    // Power lost mid-download (so none can finish first); the abort is made on gw-0 meanwhile.
    for (const c of sims) c.kill('SIGKILL');
    await Promise.all(sims.map((c) => c.exitCode === null && new Promise((r) => c.once('exit', r))));
    await control('abort');
    await on1('aborted');
    const stopped = ids.map(held);
    expect(stopped.every((o) => o > 0 && o < IMAGE_CTL)).toBe(true);
    // Back on gw-1, each device asks to resume (at connect, then on each stall) and gets no chunk.
    const after = lines.length;
    sim(1, 1);
    await waitFor(
      () => ids.every((d) => lines.slice(after).filter((l) => l.device === d && l.reason === 'resume').length >= 2),
      30_000,
      'resume requests',
    );
    expect(ids.map(held)).toEqual(stopped);
    expect(lines.filter((l) => ['verified', 'confirmed'].includes(l.state))).toEqual([]);
    await sameOnBoth();
    expect((await statusOf('r-ctl', 0)).parsed[0]!.state).toBe('aborted');
  });
});
