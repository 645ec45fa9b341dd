/**
 * Rules engine figures:
 * - frame → decision latency inside the engine, p50/p99, with 200 rules loaded (sliding and
 *   tumbling windows with aggregates, hysteresis + for-duration, debounce, cooldown, watchdogs,
 *   state machines) and 5 000 frames/s of background traffic on the live asyncScheduler.
 *   Baseline: the same probe frames pushed through an empty rule set (the engine's floor).
 * - replay speed: stored frames (real lmdb store, signed frames) read, decoded and run through
 *   the same 200 rules on the virtual clock. Baseline: reading and decoding the frames alone.
 *   node --import tsx bench/rules.ts [--quick]
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Store } from '../gateway/store/store.js';
import { GatewayIdentity } from '../gateway/identity.js';
import { BlockLog } from '../gateway/log/block-log.js';
import type { FrameEntry } from '../protocols/index.js';
import type { Decision } from '../rules/decision.js';
import { parseRuleFile } from '../rules/dsl/parse.js';
import { RulesEngine } from '../rules/engine/engine.js';
import type { RuleFrame } from '../rules/frame.js';
import { type LazyFrame, replay } from '../rules/replay/replay.js';
import { storedToRuleFrame } from '../rules/replay/stored.js';
import { benchDevice } from './lib/devices.js';
import { benchDeviceId, ruleFile } from './lib/rules-workload.js';

const quick = process.argv.includes('--quick');
const RULES = 200;
const DEVICES = 100;
const BG_RATE = 5000;
const PROBES = quick ? 1000 : 5000;
const REPLAY_FRAMES = quick ? 50_000 : 300_000;
const dev = (i: number): string => benchDeviceId(i, DEVICES);

const ruleSet = parseRuleFile('bench.yaml', ruleFile(RULES, DEVICES));
const empty = { rules: [], interlocks: [] };

let seq = 0;
const rf = (device: string, name: string, value: number): RuleFrame => {
  const t = Date.now();
  return {
    device,
    boot: 1,
    seq: seq++,
    time: t,
    model: 'press-vib-1',
    site: 'plant-a',
    records: [{ name, value, time: t }],
  };
};

/** Probe latency (push → sink) under background load, on the live scheduler. */
async function latency(set: typeof ruleSet): Promise<{ p50: number; p99: number; bgRate: number; decided: number }> {
  let t0 = 0;
  const lat: number[] = [];
  let decided = 0;
  const engine = new RulesEngine(set, {
    sink: {
      decide(d: Decision) {
        decided++;
        if (d.rule === 'probe' && t0 > 0) lat.push(performance.now() - t0);
      },
    },
  }).start();
  let bgSent = 0;
  const start = performance.now();
  const bg = setInterval(() => {
    const due = Math.floor(((performance.now() - start) / 1000) * BG_RATE) - bgSent;
    for (let i = 0; i < due; i++) engine.push(rf(dev(bgSent++), 'temp', 20 + (bgSent % 7)));
  }, 10);
  for (let i = 0; i < PROBES; i++) {
    await new Promise((r) => setTimeout(r, 5));
    t0 = performance.now();
    engine.push(rf('cell-1', 'vib', 9));
    if (set.rules.length === 0) lat.push(performance.now() - t0); // no rule: the push itself
    t0 = 0;
  }
  clearInterval(bg);
  const bgRate = bgSent / ((performance.now() - start) / 1000);
  engine.stop();
  lat.splice(0, Math.floor(lat.length / 10)); // warm-up
  lat.sort((a, b) => a - b);
  const pct = (p: number): number => lat[Math.min(lat.length - 1, Math.floor((p / 100) * lat.length))]!;
  return { p50: pct(50), p99: pct(99), bgRate, decided };
}

const base = await latency(empty);
const full = await latency(ruleSet);

// Replay speed over a real store of signed frames.
const dir = mkdtempSync(join(tmpdir(), 'outpost-bench-rules-'));
const store = Store.open(dir);
const identity = GatewayIdentity.loadOrCreate('gw-bench', dir);
// The frames in signed blocks of 256, as ingest logs them (their only copy).
const log = new BlockLog(store, { publicKey: identity.publicKey, sign: identity.sign });
const devices = Array.from({ length: DEVICES }, (_, i) => benchDevice(dev(i)));
const T0 = 1_760_000_000_000;
let batch: FrameEntry[] = [];
for (let i = 0; i < REPLAY_FRAMES; i++) {
  const d = devices[i % DEVICES]!;
  const n = Math.floor(i / DEVICES);
  batch.push({ frame: d.frame(1, n, 20 + (n % 50)), rxTime: T0 + i * 2, transport: 'mqtt' });
  if (batch.length === 256) {
    log.appendFrames(batch);
    batch = [];
  }
  if (i % 10_000 === 9999) await log.settled();
}
if (batch.length > 0) log.appendFrames(batch);
await log.settled();
const read = function* (): Generator<RuleFrame> {
  for (const f of log.frames.query({})) {
    const r = storedToRuleFrame(f, { model: 'press-vib-1', site: 'plant-a' });
    if (r) yield r;
  }
};
/** Frames per CPU-second of this process (the machine is shared: wall time varies with others' load). */
function rate(run: () => number): { cpu: number; wall: number } {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const n = run();
  const c = process.cpuUsage(c0);
  return { cpu: n / ((c.user + c.system) / 1e6), wall: n / ((performance.now() - t0) / 1000) };
}
const inMemory = [...read()];
replay(ruleSet, inMemory); // JIT warm-up of the rule pipelines
const readRate = rate(() => {
  let n = 0;
  for (const _ of read()) n++;
  return n;
});
let r!: ReturnType<typeof replay>;
const replayRate = rate(() => (r = replay(ruleSet, read())).frames);
const engineRate = rate(() => replay(ruleSet, inMemory).frames);
// A dry run of rules about a tenth of the site: the other devices' frames are never decoded.
const tenth = new Set(Array.from({ length: DEVICES / 10 }, (_, i) => dev(i)));
const fewRules = { rules: ruleSet.rules.filter((x) => x.trigger.devices?.every((d) => tenth.has(d))), interlocks: [] };
const lazy = function* (): Generator<LazyFrame> {
  for (const f of log.frames.query({}))
    yield {
      device: f.device,
      model: 'press-vib-1',
      site: 'plant-a',
      time: f.rxTime,
      decode: () => storedToRuleFrame(f, { model: 'press-vib-1', site: 'plant-a' }),
    };
};
const lazyRate = rate(() => replay(fewRules, lazy()).frames);
await store.close();
rmSync(dir, { recursive: true, force: true });

const rows = [
  {
    figure: `frame → decision in the engine, p50 (${RULES} rules, ${BG_RATE} frames/s background)`,
    value: full.p50,
    unit: 'ms',
    baseline: 'same probe, empty rule set',
    baselineValue: base.p50,
    ratio: full.p50 / base.p50,
  },
  {
    figure: `frame → decision in the engine, p99 (${RULES} rules, ${BG_RATE} frames/s background)`,
    value: full.p99,
    unit: 'ms',
    baseline: 'same probe, empty rule set',
    baselineValue: base.p99,
    ratio: full.p99 / base.p99,
    goal: '<= 2 ms',
    pass: full.p99 <= 2,
  },
  {
    figure: 'background traffic delivered during the latency run',
    value: full.bgRate,
    unit: 'frames/s',
    goal: `>= ${BG_RATE * 0.95} frames/s`,
    pass: full.bgRate >= BG_RATE * 0.95,
  },
  {
    figure: `replay: stored frames read, decoded and run through ${RULES} rules (${r.frames} frames, ${r.decisions.length} decisions), per CPU-second`,
    value: replayRate.cpu,
    unit: 'frames/s',
    baseline: 'reading + decoding the frames alone',
    baselineValue: readRate.cpu,
    ratio: replayRate.cpu / readRate.cpu,
    goal: '>= 100000 frames/s',
    pass: replayRate.cpu >= 100_000,
  },
  {
    figure: 'replay: the same, wall clock (shared machine)',
    value: replayRate.wall,
    unit: 'frames/s',
    baseline: 'reading alone, wall clock',
    baselineValue: readRate.wall,
    ratio: replayRate.wall / readRate.wall,
  },
  {
    figure: `replay: the engine alone on frames in memory (${RULES} rules), per CPU-second`,
    value: engineRate.cpu,
    unit: 'frames/s',
  },
  {
    figure: `replay: ${fewRules.rules.length} rules about ${tenth.size} of ${DEVICES} devices, stored frames decoded lazily, per CPU-second`,
    value: lazyRate.cpu,
    unit: 'frames/s',
    baseline: 'reading + decoding every frame',
    baselineValue: readRate.cpu,
    ratio: lazyRate.cpu / readRate.cpu,
  },
];
for (const x of rows)
  console.log(
    `${x.figure}: ${x.value.toFixed(3)} ${x.unit}${x.baselineValue !== undefined ? `  (baseline ${x.baselineValue.toFixed(3)}, ratio ${x.ratio!.toFixed(2)})` : ''}${x.goal ? `  goal ${x.goal}: ${x.pass ? 'pass' : 'FAIL'}` : ''}`,
  );
mkdirSync(join(import.meta.dirname, 'results'), { recursive: true });
writeFileSync(
  join(import.meta.dirname, 'results', 'rules.json'),
  JSON.stringify({ at: new Date().toISOString(), quick, rows }, null, 2) + '\n',
);
process.exit(0);
