/**
 * `node --import tsx bench/startup.ts [--quick]` (part of `npm run bench`): what a start costs,
 * compiled (bin/gateway.js running dist/, as `npm start` does) against the sources through tsx
 * (OUTPOST_FROM_SOURCE=1, as bin/ did before), measured in the same run, alternating.
 *
 * - process start to first frame acked, empty store: spawn `gateway start`, a device dials the
 *   MQTT port every 10 ms from the spawn on and publishes one signed frame at QoS 1; the time
 *   is spawn → PUBACK (the PUBACK means the frame is durable).
 * - RSS of the idle gateway process with the 20-device simulated fleet (`npm start`'s demo),
 *   read from /proc after the fleet has run for a while (the fleet is its own process).
 *
 * Writes bench/results/startup.json.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import mqtt from 'mqtt';
import { topics } from '../protocols/index.js';
import { freePort, tempDir } from '../test/helpers/env.js';
import { benchDevice } from './lib/devices.js';
import type { Row } from './lib/row.js';

const { values } = parseArgs({ options: { quick: { type: 'boolean' } } });
const quick = values.quick === true;
const root = new URL('../', import.meta.url).pathname;
type Mode = 'compiled' | 'source';

function gateway(mode: Mode, args: string[]): ChildProcess {
  return spawn(process.execPath, ['bin/gateway.js', 'start', ...args], {
    cwd: root,
    stdio: 'ignore',
    env: { ...process.env, ...(mode === 'source' ? { OUTPOST_FROM_SOURCE: '1' } : {}) },
  });
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

/** Spawn → PUBACK of the first frame, in ms, on an empty store. */
async function firstAck(mode: Mode): Promise<number> {
  const tmp = tempDir('outpost-bench-start-');
  const dev = benchDevice('start-dev');
  const port = await freePort();
  const cfg = join(tmp.dir, 'outpost.yaml');
  writeFileSync(
    cfg,
    `gateway: { id: gw-bench, dataDir: ${JSON.stringify(join(tmp.dir, 'data'))} }\nmqtt: { port: ${port} }\n` +
      `api: { enabled: false }\ningest: { minFreeBytes: 0 }\ndevices:\n  - { id: start-dev, publicKey: "${dev.publicKeyHex}" }\n`,
  );
  const t0 = performance.now();
  const child = gateway(mode, ['--config', cfg, '--no-simulate']);
  try {
    for (;;) {
      const client = mqtt.connect(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0, connectTimeout: 2000 });
      const ok = await new Promise<boolean>((r) => {
        client.once('connect', () => r(true));
        client.once('error', () => r(false));
        client.once('close', () => r(false));
      });
      if (ok) {
        await client.publishAsync(topics.up('start-dev'), Buffer.from(dev.frame(1, 1)), { qos: 1 });
        const ms = performance.now() - t0;
        await client.endAsync();
        return ms;
      }
      client.end(true);
      if (child.exitCode !== null) throw new Error(`gateway (${mode}) exited ${child.exitCode}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  } finally {
    await stop(child);
    tmp.cleanup();
  }
}

/** RSS (MB) of the gateway process after `settleS` seconds with the 20-device simulated fleet. */
async function idleRss(mode: Mode, settleS: number): Promise<number> {
  const tmp = tempDir('outpost-bench-rss-');
  const cfg = join(tmp.dir, 'outpost.yaml');
  writeFileSync(
    cfg,
    `gateway: { id: gw-bench, dataDir: ${JSON.stringify(join(tmp.dir, 'data'))} }\nmqtt: { port: 0 }\napi: { port: 0 }\n`,
  );
  const child = gateway(mode, ['--config', cfg]);
  try {
    await new Promise((r) => setTimeout(r, settleS * 1000));
    if (child.exitCode !== null) throw new Error(`gateway (${mode}) exited ${child.exitCode}`);
    const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))![1]);
    return kb / 1024;
  } finally {
    await stop(child);
    tmp.cleanup();
  }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const runs = quick ? 3 : 7;
  const t: Record<Mode, number[]> = { compiled: [], source: [] };
  await firstAck('compiled'); // dist/ current before timing (a stale one is rebuilt here, not in a timed run)
  for (let i = 0; i < runs; i++) for (const m of ['source', 'compiled'] as const) t[m].push(await firstAck(m));
  const settle = quick ? 8 : 20;
  const rss = { source: await idleRss('source', settle), compiled: await idleRss('compiled', settle) };
  const rows: Row[] = [
    {
      figure: `process start → first frame acked, empty store (median of ${runs})`,
      value: median(t.compiled),
      unit: 'ms',
      baseline: 'from source through tsx',
      baselineValue: median(t.source),
      ratio: median(t.compiled) / median(t.source),
      goal: '<= 1000 ms',
      pass: median(t.compiled) <= 1000,
    },
    {
      figure: `RSS of the idle gateway with the 20-device fleet (after ${settle} s)`,
      value: rss.compiled,
      unit: 'MB',
      baseline: 'from source through tsx',
      baselineValue: rss.source,
      ratio: rss.compiled / rss.source,
      goal: '<= 120 MB',
      pass: rss.compiled <= 120,
    },
  ];
  for (const r of rows)
    console.log(
      `${r.figure}: ${r.value.toFixed(0)} ${r.unit} (${r.baseline}: ${r.baselineValue!.toFixed(0)} ${r.unit}, ratio ${r.ratio!.toFixed(2)})`,
    );
  console.log(
    `all runs (ms): compiled ${t.compiled.map((x) => x.toFixed(0)).join(' ')}; source ${t.source.map((x) => x.toFixed(0)).join(' ')}`,
  );
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(
    new URL('./results/startup.json', import.meta.url),
    JSON.stringify({ at: new Date().toISOString(), quick, rows }, null, 2) + '\n',
  );
}

await main();
