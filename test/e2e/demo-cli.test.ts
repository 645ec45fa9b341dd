/**
 * `gateway demo NAME` as a newcomer runs it: one command, a gateway with the example's
 * rules and its simulated fleet with actuators. Through the API the dashboard reads, every
 * actuator reports its state (`act.<name>` readings) and the decisions are logged with
 * their reasons; in the intersection, signal commands are acked by the devices.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/env.js';

const root = new URL('../../', import.meta.url).pathname;
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

type Get = (path: string) => Promise<unknown>;

/** Polls `probe` every 250 ms until it returns something truthy. */
async function until<T>(probe: () => Promise<T | undefined | false>, what: string, timeoutMs = 60_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

interface Decision {
  rule: string;
  reason: string;
  action: { kind: string; command?: { device: string; actuator: string } };
  outcome?: { state: string };
}

async function runDemo(name: string): Promise<{ get: Get; child: ChildProcess }> {
  const tmp = tempDir(`outpost-demo-${name}-`);
  cleanups.push(() => tmp.cleanup());
  const child = spawn(
    process.execPath,
    ['bin/gateway.js', 'demo', name, '--data', tmp.dir, '--port', '0', '--api-port', '0', '--rate', '2'],
    { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  cleanups.push(async () => {
    if (child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
    expect(child.exitCode).toBe(0);
  });
  const apiPort = await new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`demo exited (${code})`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const rec = JSON.parse(line) as { event?: string; apiPort?: number };
      if (rec.event === 'ready') resolve(rec.apiPort!);
    });
  });
  const token = readFileSync(join(tmp.dir, 'api-token'), 'utf8').trim();
  const get = async (path: string) => {
    const res = await fetch(`http://127.0.0.1:${apiPort}${path}`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    return res.json() as Promise<unknown>;
  };
  return { get, child };
}

/** Each device's actuator states as it reported them, from /api/devices. */
async function actuatorStates(get: Get): Promise<Record<string, Record<string, unknown>>> {
  const { devices } = (await get('/api/devices')) as {
    devices: { id: string; readings: { name: string; value: unknown }[] }[];
  };
  return Object.fromEntries(
    devices.map((d) => [
      d.id,
      Object.fromEntries(d.readings.filter((r) => r.name.startsWith('act.')).map((r) => [r.name.slice(4), r.value])),
    ]),
  );
}

describe('gateway demo', () => {
  it('intersection: the signal heads and the crossing report their states; acked decisions with reasons', async () => {
    const { get } = await runDemo('intersection');
    await until(async () => {
      const s = await actuatorStates(get);
      return s['sig-ns']?.aspect !== undefined && s['sig-ew']?.aspect !== undefined && s['ped-1']?.walk !== undefined;
    }, 'every actuator reports its state');
    const acked = await until(async () => {
      const { decisions } = (await get('/api/decisions')) as { decisions: Decision[] };
      return decisions.find((d) => d.outcome?.state === 'acked' && d.action.command?.actuator === 'aspect');
    }, 'a signal command acked by its device');
    expect(acked.rule).toBe('intersection');
    expect(acked.reason).toMatch(/→/); // the machine's transition and why
    const s = await actuatorStates(get);
    expect(['red', 'amber', 'green']).toContain(s['sig-ns']!.aspect);
  }, 150_000);

  it('factory-cell: the conveyor reports its speed and the decisions are logged with reasons', async () => {
    const { get } = await runDemo('factory-cell');
    await until(
      async () => typeof (await actuatorStates(get))['conveyor-01']?.speed === 'number',
      'the conveyor reports its speed',
    );
    const { decisions } = (await get('/api/decisions')) as { decisions: Decision[] };
    expect(decisions.length).toBeGreaterThan(0);
    expect(decisions[0]!.rule).toBe('conveyor');
    expect(decisions[0]!.reason).not.toBe('');
  }, 150_000);
});
