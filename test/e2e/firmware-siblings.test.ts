/**
 * A rollout carried on by a sibling, real processes: two gateways syncing over TCP (configured
 * peers), the release and the rollout logged on gw-0, whose devices download part of the image
 * before gw-0 is SIGKILLed; the devices (a firmware-sim process, power lost with the gateway)
 * come back on gw-1, which serves the rest of the image from its synced copy and carries the
 * rollout to the end. Restarted, gw-0 shows the same `gateway firmware status`.
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

describe('firmware rollout across siblings', () => {
  it('a sibling carries a rollout on when the gateway that started it dies; status is the same on both', {
    timeout: 300_000,
  }, async () => {
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
    let gw0 = await startGatewayProcess(cfgs[0]!.file);
    const gw1 = await startGatewayProcess(cfgs[1]!.file);
    onTestFinished(async () => {
      await stopGatewayProcess(gw0);
      await stopGatewayProcess(gw1);
    });
    const image = randomBytes(300_000);
    writeFileSync(join(dir, 'image.bin'), image);
    const cli = (args: string[], cfg = cfgs[0]!.file) => gatewayCli([...args, '--config', cfg]);
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
    const statusOf = async (cfg: string) => {
      const r = await cli(['firmware', 'status', 'r-sib', '--json'], cfg);
      return JSON.parse(r.stdout) as { state: string; devices: Record<string, { state: string }> }[];
    };
    const sims: ChildProcess[] = [];
    const lines: { device: string; state: string; offset: number }[] = [];
    const sim = (gateway: number, port: number): ChildProcess => {
      const child = spawn(
        process.execPath,
        [
          simBin,
          'update',
          '--keys',
          keys,
          '--broker',
          `mqtt://127.0.0.1:${port}`,
          '--gateway-id',
          `gw-${gateway}`,
          '--release-key',
          releaseDid,
          '--state',
          join(dir, 'flash'),
          '--chunk',
          '2048',
          '--window',
          '2',
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      createInterface({ input: child.stdout! }).on('line', (l) => lines.push(JSON.parse(l) as (typeof lines)[0]));
      sims.push(child);
      return child;
    };
    onTestFinished(() => {
      for (const c of sims) if (c.exitCode === null) c.kill('SIGKILL');
    });
    const ro = await cli(['firmware', 'rollout', '1.1.0', '--devices', 'sim-*', '--id', 'r-sib', '--wait', '60']);
    expect(ro.stderr).toBe('');
    // Carrying on needs what sync brings: gw-1 holds the whole image and the rollout before the
    // devices start downloading from gw-0 (under load sync may lag a download; without them no
    // gateway could go on).
    await waitFor(
      async () => {
        const l = JSON.parse((await cli(['firmware', 'list', '--json'], cfgs[1]!.file)).stdout) as {
          releases: { version: string; complete: boolean }[];
        };
        return (
          l.releases.some((r) => r.version === '1.1.0' && r.complete) &&
          (JSON.parse((await cli(['firmware', 'status', '--json'], cfgs[1]!.file)).stdout) as { id: string }[]).some(
            (r) => r.id === 'r-sib',
          )
        );
      },
      120_000,
      'gw-1 holds the release and the rollout',
    );
    const first = sim(0, gw0.port);
    await waitFor(
      () => lines.some((l) => l.state === 'downloading' && l.offset > 20_000),
      120_000,
      'a download under way',
    );
    gw0.child.kill('SIGKILL');
    first.kill('SIGKILL');
    await new Promise((r) => gw0.child.once('exit', r));
    const cut = lines.length;
    const mid = lines.find((l) => l.state === 'downloading' && l.offset > 20_000)!;
    sim(1, gw1.port);
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
    await waitFor(async () => (await statusOf(cfgs[1]!.file))[0]?.state === 'done', 60_000);
    gw0 = await startGatewayProcess(cfgs[0]!.file);
    // The CLI reads the log beside the running gateway: gw-0 catches up through sync.
    await waitFor(
      async () => JSON.stringify(await statusOf(cfgs[0]!.file)) === JSON.stringify(await statusOf(cfgs[1]!.file)),
      120_000,
      'the same status on both',
    );
    const st = (await statusOf(cfgs[0]!.file))[0]!;
    expect(st.state).toBe('done');
    expect(Object.values(st.devices).map((d) => d.state)).toEqual(['confirmed', 'confirmed', 'confirmed']);
  });
});
