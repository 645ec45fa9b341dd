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
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { tempDir } from '../test/helpers/env.js';
import {
  firstAck,
  type GatewaySpawn,
  procMemory,
  spawnGateway,
  startEnv,
  startFlags,
  stopProcess,
} from './lib/gateway-process.js';
import type { Row } from './lib/row.js';

const { values } = parseArgs({ options: { quick: { type: 'boolean' } } });
const quick = values.quick === true;
const root = new URL('../', import.meta.url).pathname;
type Mode = 'compiled' | 'source';

/** `npm start`'s node options; from source, the tsx launcher (OUTPOST_FROM_SOURCE=1). */
const how = (mode: Mode): GatewaySpawn => ({
  root,
  nodeArgs: startFlags(root),
  env: { ...startEnv(root), ...(mode === 'source' && { OUTPOST_FROM_SOURCE: '1' }) },
});

/** RSS (MB) of the gateway process after `settleS` seconds with the 20-device simulated fleet. */
async function idleRss(mode: Mode, settleS: number): Promise<number> {
  const tmp = tempDir('outpost-bench-rss-');
  const cfg = join(tmp.dir, 'outpost.yaml');
  writeFileSync(
    cfg,
    `gateway: { id: gw-bench, dataDir: ${JSON.stringify(join(tmp.dir, 'data'))} }\nmqtt: { port: 0 }\napi: { port: 0 }\n`,
  );
  const child = spawnGateway(how(mode), ['--config', cfg]);
  try {
    await new Promise((r) => setTimeout(r, settleS * 1000));
    if (child.exitCode !== null) throw new Error(`gateway (${mode}) exited ${child.exitCode}`);
    return procMemory(child.pid!).rss;
  } finally {
    await stopProcess(child);
    tmp.cleanup();
  }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const runs = quick ? 3 : 7;
  const t: Record<Mode, number[]> = { compiled: [], source: [] };
  await firstAck(how('compiled')); // dist/ current before timing (a stale one is rebuilt here, not in a timed run)
  for (let i = 0; i < runs; i++)
    for (const m of ['source', 'compiled'] as const) t[m].push((await firstAck(how(m))).ms);
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
