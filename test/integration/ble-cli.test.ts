/**
 * `firmware-sim ble` as a separate process: its simulated radio on a free
 * port, a gateway (real noble) pointed at it with ble.radio, every frame
 * stored once and acked with verified gateway signatures. Clause: the
 * firmware-sim BLE radio presents simulated devices as peripherals.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { generateManifest, writeManifest } from '../../firmware-sim/manifest.js';
import { parseCli, UsageError } from '../../firmware-sim/cli.js';
import { startTestGateway, tempDir, waitFor } from '../helpers/env.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('firmware-sim ble', () => {
  it('refuses bad flags naming them', () => {
    expect(() => parseCli(['ble'])).toThrow(/--keys FILE is required/);
    expect(() => parseCli(['ble', '--keys', 'k.json', '--mtu', '10'])).toThrow(/--mtu/);
    expect(() => parseCli(['ble', '--keys', 'k.json', '--advertise', 'loud'])).toThrow(UsageError);
    expect(parseCli(['ble', '--keys', 'k.json', '--device', 'a', '--device', 'b'])).toMatchObject({
      cmd: 'ble',
      devices: ['a', 'b'],
      port: 2846,
      mtu: 247,
    });
  });

  it('3 devices over the simulated radio into a gateway: every frame stored once, acks verified (clause: simulated radio, real noble)', async () => {
    const tmp = tempDir('outpost-ble-cli-');
    cleanups.push(() => tmp.cleanup());
    const manifest = generateManifest({ devices: 3, prefix: 'blecli', site: 'site-1', model: 'env-1' });
    const keys = join(tmp.dir, 'keys.json');
    writeManifest(keys, manifest);
    // The gateway's key must be known to the devices first: start it with BLE off, read its did, restart with BLE on.
    const dataDir = join(tmp.dir, 'data');
    const enrol = manifest.devices.map((d) => ({ id: d.id, publicKey: d.publicKey }));
    const first = await startTestGateway(dataDir, enrol);
    const did = first.gw.identity.did;
    await first.gw.stop();
    const N = 15;
    const child = spawn(
      process.execPath,
      [
        'bin/firmware-sim.js',
        'ble',
        '--keys',
        keys,
        '--port',
        '0',
        '--rate',
        '20',
        '--max-frames',
        String(N),
        '--mtu',
        '23',
        '--advertise',
        'manufacturer',
        '--gateway-key',
        did,
        '--gateway-id',
        'gw-test',
        '--signer',
        'node',
        '--status',
        '0.5',
        '--resend-ms',
        '300',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    cleanups.push(() => child.kill('SIGKILL'));
    await waitFor(() => /BLE radio at (ws:\/\/\S+)/.test(out), 15_000, 'radio url');
    const url = /BLE radio at (ws:\/\/\S+)/.exec(out)![1]!;
    const { gw } = await startTestGateway(dataDir, enrol, {
      ble: { enabled: true, radio: url, backoffMinMs: 50, maxConnecting: 3 },
    });
    cleanups.push(() => gw.stop());
    await waitFor(
      () => manifest.devices.every((d) => [...gw.frames.query({ device: d.id })].length === N),
      20_000,
      'all frames stored',
    );
    await waitFor(() => out.includes(`acked=${3 * N} pending=0`), 10_000, 'all acked at the devices');
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(out).toContain('bad-downlink=0');
    expect(out).not.toContain('UNVERIFIED');
    for (const d of manifest.devices) {
      const keysStored = [...gw.frames.query({ device: d.id })].map((f) => `${f.boot}:${f.seq}`);
      expect(new Set(keysStored).size).toBe(N);
    }
  }, 40_000);
});
