/** The firmware-sim CLI as a user runs it: `node bin/firmware-sim.js ...` in a child process. */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { validateManifest } from '../../firmware-sim/manifest.js';
import { startBroker, type TestBroker } from './firmware-sim.broker.js';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(
  args: string[],
  opts: { onStdout?: (chunk: string, kill: (sig: NodeJS.Signals) => void) => void } = {},
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bin/firmware-sim.js', ...args], {
      cwd: process.cwd(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      opts.onStdout?.(stdout, (sig) => child.kill(sig));
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('firmware-sim CLI', () => {
  const cleanups: Array<() => unknown> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('keygen --devices 3 prints a valid manifest', async () => {
    const r = await run(['keygen', '--devices', '3', '--model', 'traffic-1']);
    expect(r.code).toBe(0);
    const v = validateManifest(JSON.parse(r.stdout));
    expect(v.ok).toBe(true);
    if (v.ok)
      expect(v.value.devices.map((d) => [d.id, d.model])).toEqual([
        ['sim-0001', 'traffic-1'],
        ['sim-0002', 'traffic-1'],
        ['sim-0003', 'traffic-1'],
      ]);
  });

  it('keygen --out writes a 0600 file and prints only the public view; bad flags exit 2 naming the flag', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fwsim-cli-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'keys.json');
    const r = await run(['keygen', '--devices', '2', '--out', file]);
    expect(r.code).toBe(0);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(validateManifest(JSON.parse(readFileSync(file, 'utf8'))).ok).toBe(true);
    expect(r.stdout).not.toContain('secretKey');
    expect(JSON.parse(r.stdout).devices).toHaveLength(2);

    const bad = await run(['keygen', '--devices', 'many']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--devices');
    const unknown = await run(['fleet', '--turbo']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('--turbo');
  });

  it('fleet --duration runs against a broker, keeps state, and exits 0 with a final status line', async () => {
    const b: TestBroker = await startBroker();
    cleanups.push(() => b.close());
    const dir = mkdtempSync(join(tmpdir(), 'fwsim-cli-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const keys = join(dir, 'keys.json');
    expect((await run(['keygen', '--devices', '3', '--out', keys])).code).toBe(0);
    const state = join(dir, 'state');

    const r = await run([
      'fleet',
      '--keys',
      keys,
      '--rate',
      '10',
      '--broker',
      b.url,
      '--duration',
      '1.5',
      '--state',
      state,
      '--status',
      '0.5',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines.length).toBeGreaterThanOrEqual(3); // banner, periodic status, final
    const final = /devices=3 connected=\d+ sent=(\d+) acked=(\d+) pending=(\d+)/.exec(lines.at(-1)!);
    expect(final).not.toBeNull();
    expect(Number(final![2])).toBeGreaterThanOrEqual(30);
    expect(Number(final![2]) + Number(final![3])).toBeGreaterThanOrEqual(Number(final![1]));
    expect(readdirSync(state).sort()).toEqual(['sim-0001.json', 'sim-0002.json', 'sim-0003.json']);
    expect(JSON.parse(readFileSync(join(state, 'sim-0001.json'), 'utf8')).boot).toBe(1);

    // SIGTERM stops a fleet without --duration cleanly; the next run boots with boot 2.
    let signalled = false;
    const r2 = await run(['fleet', '--keys', keys, '--broker', b.url, '--state', state, '--status', '0.2'], {
      onStdout: (out, kill) => {
        if (!signalled && /connected=3/.test(out)) {
          signalled = true;
          kill('SIGTERM');
        }
      },
    });
    expect(signalled).toBe(true);
    expect(r2.code).toBe(0);
    expect(r2.stdout).toMatch(/\(stopped\)\n$/);
    expect(JSON.parse(readFileSync(join(state, 'sim-0001.json'), 'utf8')).boot).toBe(2);
  });

  it('fleet --per-connection runs the devices behind hubs (one connection per N), frames acked; refuses commands', async () => {
    const b: TestBroker = await startBroker();
    cleanups.push(() => b.close());
    const clients = new Set<string>();
    b.broker.on('client', (c) => clients.add(c.id));
    const r = await run([
      'fleet',
      '--devices',
      '6',
      '--per-connection',
      '3',
      '--rate',
      '10',
      '--max-frames',
      '5',
      '--broker',
      b.url,
      '--duration',
      '1.5',
      '--status',
      '0.5',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/6 devices at 10 Hz, 3 per connection/);
    expect(r.stdout.trim().split('\n').at(-1)).toMatch(
      /devices=6 connected=\d+ sent=30 acked=30 pending=0 .*\(stopped\)$/,
    );
    expect(clients.size).toBe(2);
    const bad = await run([
      'fleet',
      '--per-connection',
      '3',
      '--actuators',
      'valve=0',
      '--gateway-id',
      'gw',
      '--gateway-key',
      'a'.repeat(64),
    ]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--per-connection carries frames only/);
  });
});
