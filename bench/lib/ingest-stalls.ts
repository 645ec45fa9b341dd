/**
 * `node --max-semi-space-size=4 --heap-growing-percent=20 --import tsx bench/lib/ingest-stalls.ts
 * [--devices N] [--seconds S] [--phases paced,paced] [--profile FILE]`: where frame-to-durable
 * p99 goes at 1 Hz a device (a diagnostic, not a bench with figures of its own: not run by
 * `npm run bench`). The gateway runs in this process as in bench/ingest.ts, N devices (1 000) in
 * a load-generator process; each phase sends 1 Hz a device for S seconds (10). Per phase: the
 * latency percentiles and the event loop's delay; then per second the latency p50/p99 and what
 * ran long in it: sealing (`Journal.sealDue`) and journaling (`append`) over 3 ms, the local
 * rollups' batches (`RollupStore.deliverWithCursor`, each, from call to commit), `durable()`
 * waits over 25 ms and GC pauses over 3 ms (`gc1` scavenge, `gc4` mark-compact, `gc8`
 * incremental marking). `--profile FILE` writes a CPU profile (200 µs sampling) of the last phase.
 * The timed methods are wrapped on their prototypes here, so the gateway's code is unchanged.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { monitorEventLoopDelay, type PerformanceEntry, PerformanceObserver } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { RollupStore } from '../../gateway/export/rollups.js';
import { IngestStats } from '../../gateway/ingest/stats.js';
import { Journal } from '../../gateway/log/journal.js';
import { Store } from '../../gateway/store/store.js';
import { startTestGateway, tempDir } from '../../test/helpers/env.js';
import { generator } from './generator.js';

const { values } = parseArgs({
  options: {
    devices: { type: 'string', default: '1000' },
    seconds: { type: 'string', default: '10' },
    phases: { type: 'string', default: 'paced,paced' },
    profile: { type: 'string' },
  },
});
const devices = Number(values.devices);
const seconds = Number(values.seconds);

/** [time, latency ms] of every frame stored. */
const latencies: [number, number][] = [];
/** [start, what, ms] of everything that ran long. */
const events: [number, string, number][] = [];

const count = IngestStats.prototype.count;
IngestStats.prototype.count = function (o, transport, ms) {
  if (o.status === 'stored') latencies.push([performance.now(), ms]);
  return count.call(this, o, transport, ms);
};
for (const name of ['sealDue', 'append'] as const) {
  const f = Journal.prototype[name] as (...a: unknown[]) => unknown;
  (Journal.prototype as unknown as Record<string, unknown>)[name] = function (this: Journal, ...a: unknown[]) {
    const t = performance.now();
    try {
      return f.apply(this, a);
    } finally {
      const d = performance.now() - t;
      if (d > 3) events.push([t, name, d]);
    }
  };
}
const durable = Store.prototype.durable;
Store.prototype.durable = function () {
  const t = performance.now();
  const p = durable.call(this);
  const note = (): void => {
    const d = performance.now() - t;
    if (d > 25) events.push([t, 'durable', d]);
  };
  p.then(note, note);
  return p;
};
const deliver = RollupStore.prototype.deliverWithCursor;
RollupStore.prototype.deliverWithCursor = function (frames, writeCursor) {
  const t = performance.now();
  const p = deliver.call(this, frames, writeCursor);
  const note = (): void => void events.push([t, `rollups(${frames.length})`, performance.now() - t]);
  p.then(note, note);
  return p;
};
new PerformanceObserver((list) => {
  for (const e of list.getEntries())
    if (e.duration > 3)
      events.push([
        e.startTime,
        `gc${(e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind}`,
        e.duration,
      ]);
}).observe({ entryTypes: ['gc'] });
const loopDelay = monitorEventLoopDelay({ resolution: 1 });

const tmp = tempDir('outpost-stalls-');
const { gw, url } = await startTestGateway(tmp.dir, [], {
  // One address dials every device (as bench/ingest.ts).
  mqtt: { port: 0, limits: { connectionsPerAddress: 100_000, pendingPerAddress: 100_000, connectsPerSecond: 100_000 } },
});
const { ask, exit } = generator(['--url', url, '--devices', String(devices), '--frames', '0']);
const { keys } = await ask<{ keys: { id: string; publicKey: string }[] }>();
await Promise.all(keys.map((k) => gw.registry.enroll(k)));
await ask('connect');

const pct = (sorted: number[], p: number): string =>
  (sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN).toFixed(1);

function report(t0: number, t1: number): void {
  const all = latencies.filter(([t]) => t >= t0 && t < t1).map(([, ms]) => ms);
  all.sort((a, b) => a - b);
  console.log(
    `1 Hz × ${devices}: n ${all.length} p50 ${pct(all, 0.5)} p90 ${pct(all, 0.9)} p99 ${pct(all, 0.99)} max ${pct(all, 1)} ms; ` +
      `event loop delay p99 ${(loopDelay.percentile(99) / 1e6).toFixed(1)} max ${(loopDelay.max / 1e6).toFixed(1)} ms`,
  );
  for (let a = t0, s = 0; a < t1; a += 1000, s++) {
    const l = latencies.filter(([t]) => t >= a && t < a + 1000).map(([, ms]) => ms);
    if (l.length === 0) continue;
    l.sort((x, y) => x - y);
    const ev = new Set(
      events
        .filter(([t]) => t >= a && t < a + 1000)
        .map(([t, what, ms]) => `${what}@${(t - a).toFixed(0)}:${ms.toFixed(0)}`),
    );
    console.log(`  s${s} n ${l.length} p50 ${pct(l, 0.5)} p99 ${pct(l, 0.99)} | ${[...ev].join(' ')}`);
  }
}

const phases = values.phases!.split(',');
for (const [i, phase] of phases.entries()) {
  if (phase !== 'paced') throw new Error(`unknown phase ${phase}`);
  const session = values.profile && i === phases.length - 1 ? new Session() : undefined;
  if (session) {
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: 200 });
    await session.post('Profiler.start');
  }
  loopDelay.reset();
  loopDelay.enable();
  const t0 = performance.now();
  await ask(`paced 1 ${seconds}`);
  loopDelay.disable();
  if (session) {
    const { profile } = await session.post('Profiler.stop');
    writeFileSync(values.profile!, JSON.stringify(profile));
    session.disconnect();
  }
  report(t0, performance.now());
}
exit();
await gw.stop();
tmp.cleanup();
process.exit(0);
