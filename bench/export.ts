/**
 * `node --import tsx bench/export.ts [--quick] [--frames N] [--rollups-only | --export-only]` (part of `npm run bench`): export.
 * - Catch-up to PostgreSQL after a week offline: a data directory holding N frames received
 *   over 7 days (100 devices, blocks of 64 frames) that its postgres sink never saw; the real
 *   gateway process (bin/gateway.js start) exports them all from the log. Wall time from
 *   "ready" to the last row in, frames/s and rows/s (frames + SenML records rows), and the
 *   gateway's peak RSS during it against the same gateway idle on the same directory without
 *   the sink (goal: ≤ idle + 50 MB). Local rollups are off, so this is the PostgreSQL sink.
 * - The same rows loaded with a plain server-side `COPY` into tables of the same definition
 *   (keys and indexes), in the same run: the export's rows/s ÷ COPY's (goal ≥ 0.5). COPY's
 *   time is the statements alone (no decoding, no network, no rollups). Also CPU seconds,
 *   which the box's load inflates less than wall time: the gateway's and every PostgreSQL
 *   process's during the export, against PostgreSQL's during the COPY.
 * - PostgreSQL minutes on demand: one series of 30 days at one reading a minute,
 *   `minute_rollups` folded into hourly points, against the same minutes stored in a table.
 * - An aggregate query over 30 days of 1-minute local rollups of one series (43 200 buckets,
 *   hourly points, from the packed minute rows), p50/p99 against reading the same buckets
 *   stored one lmdb entry per minute (the layout before) raw (goal p99 ≤ 20 ms).
 * `--profile DIR`: the exporting gateway runs with `--cpu-prof` into DIR, and PostgreSQL with
 * pg_stat_statements, whose statements (total time, calls, rows) are printed after the export.
 * The gateway (idle and exporting) runs with the node flags `npm start` gives it (package.json,
 * the same as the Pi's systemd unit: its young-generation cap and heap growth), as deployed;
 * `--bare-node` runs it without them (as this bench did before 2026-12-07).
 * Needs PostgreSQL (Debian package). Writes bench/results/export.json.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { appendFileSync, chmodSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { privateKeyObject, publicKeyFromSeed, signEd25519 } from '../gateway/crypto/ed25519.js';
import type { ExportFrame } from '../gateway/export/source.js';
import { RollupStore } from '../gateway/export/rollups.js';
import { BlockLog } from '../gateway/log/block-log.js';
import { Store } from '../gateway/store/store.js';
import { type ReadingBody, signBody } from '../protocols/index.js';
import { tempDir } from '../test/helpers/env.js';
import { startPostgres } from '../test/helpers/postgres.js';
import { cpuMs, startEnv, startFlags } from './lib/gateway-process.js';
import type { Row } from './lib/row.js';
import { randomBytes } from 'node:crypto';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean' },
    frames: { type: 'string' },
    'rollups-only': { type: 'boolean' },
    'export-only': { type: 'boolean' },
    profile: { type: 'string' },
    'bare-node': { type: 'boolean' },
  },
});
const quick = values.quick === true;
const total = Number(values.frames ?? (quick ? 10_000 : 1_000_000));
const q = quick ? 'quick: ' : '';
const rows: Row[] = [];
const WEEK = 7 * 86_400_000;
const DEVICES = 100;
const root = new URL('..', import.meta.url).pathname;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
// npm start's node flags: what a deployed gateway runs with.
const gatewayFlags = values['bare-node'] === true ? [] : startFlags(root);
const gatewayEnv = values['bare-node'] === true ? {} : startEnv(root);
/** CPU time (user + system) of a process so far, s. */
const cpuS = (pid: number): number => cpuMs(pid) / 1000;
/**
 * CPU time of a PostgreSQL server so far, s: the postmaster's own and its exited children's
 * (cutime, cstime), plus each live backend's (the postmaster's PID is postmaster.pid's first line).
 */
const pgCpuS = (socketDir: string): number => {
  const pm = Number(readFileSync(join(socketDir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
  const stat = (pid: number | string): string[] => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  const own = stat(pm);
  let ticks = Number(own[11]) + Number(own[12]) + Number(own[13]) + Number(own[14]);
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const f = stat(pid);
      if (Number(f[1]) === pm) ticks += Number(f[11]) + Number(f[12]);
    } catch {} // exited meanwhile
  }
  return ticks / 100;
};
/** RSS of a process, MB (/proc/PID/status), whole or its `RssAnon` / `RssFile` part. */
const rssMb = (pid: number, field: 'VmRSS' | 'RssAnon' | 'RssFile' = 'VmRSS'): number => {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
};

/** A signed reading of `id` at `time` (its SenML time: rollups bucket by it). */
function reading(
  id: string,
  key: ReturnType<typeof privateKeyObject> | undefined,
  seq: number,
  time: number,
): Uint8Array {
  const body: ReadingBody = {
    type: 'reading',
    boot: 1,
    seq,
    time,
    records: [{ bn: `${id}:`, n: 'temp', u: 'Cel', v: 20 + Math.sin(seq / 100) }],
  };
  // Rollups never verify a signature (the log did): the rollup bench skips signing.
  return signBody(body, id, (m) => (key ? signEd25519(key, m) : new Uint8Array(64)));
}

/**
 * A data directory with `n` frames from 100 devices received (and timed) evenly over the
 * last week, 64 to a block (another gateway's blocks: export reads every chain).
 */
async function buildDataDir(dir: string, n: number): Promise<void> {
  const store = Store.open(dir);
  const seed = randomBytes(32);
  const devices = Array.from({ length: DEVICES }, (_, i) => ({
    id: `exp-${String(i).padStart(3, '0')}`,
    seed: randomBytes(32),
  }));
  for (const d of devices)
    store.devices.putSync(d.id, {
      id: d.id,
      publicKey: Buffer.from(publicKeyFromSeed(d.seed)).toString('hex'),
      enrolledAt: 1,
    });
  const keys = devices.map((d) => privateKeyObject(d.seed));
  const log = new BlockLog(store, { publicKey: publicKeyFromSeed(seed), sign: (m) => signEd25519(seed, m) });
  const start = Date.now() - WEEK;
  for (let made = 0; made < n; ) {
    const batch = [];
    for (; batch.length < 64 && made < n; made++) {
      const time = start + Math.floor((made / n) * WEEK);
      const d = made % DEVICES;
      batch.push({
        frame: reading(devices[d]!.id, keys[d]!, Math.floor(made / DEVICES), time),
        rxTime: time,
        transport: 'mqtt',
      });
    }
    log.appendFrames(batch);
    if (made % 20_480 === 0) await log.settled();
  }
  await log.settled();
  await store.close();
}

/** bin/gateway.js start on `config`, its JSON log lines read; resolves at "ready". */
function startGateway(
  config: string,
  profile?: string,
): Promise<{ child: ChildProcess; lines: Record<string, unknown>[] }> {
  const prof = profile ? ['--cpu-prof', '--cpu-prof-dir', profile] : [];
  // BENCH_GATEWAY_NODE_ARGS: more node flags for the gateway (e.g. --trace-gc while looking at its memory).
  const extra = process.env.BENCH_GATEWAY_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  const child = spawn(
    process.execPath,
    [...gatewayFlags, ...prof, ...extra, 'bin/gateway.js', 'start', '--config', config, '--no-simulate'],
    {
      cwd: root,
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, ...gatewayEnv },
    },
  );
  const lines: Record<string, unknown>[] = [];
  return new Promise((resolve, reject) => {
    child.once('exit', (c) => reject(new Error(`gateway exited (${c})`)));
    createInterface({ input: child.stdout! }).on('line', (l) => {
      // Lines node itself prints (--trace-gc) are kept, with profile DIR, in DIR/gateway-stdout.txt.
      if (!l.startsWith('{')) {
        if (profile) appendFileSync(join(profile, 'gateway-stdout.txt'), `${l}\n`);
        return;
      }
      const rec = JSON.parse(l) as Record<string, unknown>;
      lines.push(rec);
      if (rec.event === 'ready') resolve({ child, lines });
    });
  });
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

async function exportBench(): Promise<void> {
  const tmp = tempDir('outpost-bench-export-');
  const pg = await startPostgres();
  try {
    const dataDir = join(tmp.dir, 'data');
    mkdirSync(dataDir);
    let t = performance.now();
    await buildDataDir(dataDir, total);
    console.log(
      `built ${total} frames in ${((performance.now() - t) / 1000).toFixed(1)} s; gateway node flags: ${gatewayFlags.join(' ') || 'none'}`,
    );
    const config = (sink: boolean): string => {
      const file = join(tmp.dir, sink ? 'sink.yaml' : 'idle.yaml');
      writeFileSync(
        file,
        [
          `gateway: { id: gw-bench, dataDir: ${JSON.stringify(dataDir)} }`,
          'mqtt: { port: 0 }',
          'api: { enabled: false }',
          'ingest: { minFreeBytes: 0 }',
          'export:',
          '  rollups: { enabled: false }',
          ...(sink
            ? ['  sinks:', `    - { type: postgres, name: cloud, url: "${pg.url}", maxFramesPerSecond: 0 }`]
            : []),
        ].join('\n'),
      );
      return file;
    };
    // Idle: the same gateway on the same directory, no sink, settled for a few seconds.
    const idle = await startGateway(config(false));
    await sleep(quick ? 3_000 : 10_000);
    const idleRss = rssMb(idle.child.pid!);
    const idleAnon = rssMb(idle.child.pid!, 'RssAnon');
    const idleFile = rssMb(idle.child.pid!, 'RssFile');
    await stop(idle.child);

    if (values.profile) {
      // pg_stat_statements needs a restart to load; its counters then cover the export alone.
      const a = await pg.client();
      await a.query(`ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'`);
      await a.query('ALTER SYSTEM SET logging_collector = on');
      await a.query('ALTER SYSTEM SET log_min_duration_statement = 0');
      await a.end();
      await pg.stop();
      await pg.start();
      const b = await pg.client();
      await b.query('CREATE EXTENSION pg_stat_statements');
      await b.end();
    }
    const c = await pg.client();
    const pgCpu0 = pgCpuS(pg.socketDir);
    const gw = await startGateway(config(true), values.profile);
    t = performance.now();
    let peak = rssMb(gw.child.pid!);
    let peakAnon = 0;
    let peakFile = 0;
    const sampler = setInterval(() => {
      const pid = gw.child.pid!;
      peak = Math.max(peak, rssMb(pid));
      peakAnon = Math.max(peakAnon, rssMb(pid, 'RssAnon'));
      peakFile = Math.max(peakFile, rssMb(pid, 'RssFile'));
    }, 100);
    let n = 0;
    const deadline = Date.now() + (quick ? 50_000 : 1_100_000);
    // Polled by key (the frames built last: the highest seq of each device), which costs the
    // server 100 index probes, not a count(*) over a growing table (at n = 300 000 the counts
    // were half of PostgreSQL's CPU); one count(*) confirms once those are in.
    const lastSeq = Math.floor((total - 1) / DEVICES);
    const lastRow = total - lastSeq * DEVICES;
    const ids = Array.from({ length: DEVICES }, (_, i) => `exp-${String(i).padStart(3, '0')}`);
    while (n < total && Date.now() < deadline) {
      await sleep(50);
      const last = await c
        .query<{ n: string }>(
          'SELECT count(*) AS n FROM outpost.frames WHERE (device, boot, seq) IN (SELECT unnest($1::text[]), 1, $2::bigint)',
          [ids, lastSeq],
        )
        .catch(() => ({ rows: [{ n: '0' }] }));
      if (Number(last.rows[0]!.n) < lastRow) continue;
      const r = await c.query<{ n: string }>('SELECT count(*) AS n FROM outpost.frames');
      n = Number(r.rows[0]!.n);
    }
    const exportS = (performance.now() - t) / 1000;
    const gatewayCpuS = cpuS(gw.child.pid!);
    const exportPgCpuS = pgCpuS(pg.socketDir) - pgCpu0;
    clearInterval(sampler);
    await stop(gw.child);
    if (n < total) throw new Error(`only ${n} of ${total} frames reached PostgreSQL`);
    if (values.profile) {
      const st = await c.query<{ ms: number; calls: string; rows: string; query: string }>(
        `SELECT round(total_exec_time) AS ms, calls, rows, left(regexp_replace(query, '\\s+', ' ', 'g'), 90) AS query
         FROM pg_stat_statements WHERE query NOT LIKE '%count(*)%' ORDER BY total_exec_time DESC LIMIT 8`,
      );
      for (const r of st.rows) console.log(`pg: ${r.ms} ms, ${r.calls} calls, ${r.rows} rows: ${r.query}`);
      // Every statement's duration from the server log, summed per statement (its first words).
      const logDir = join(pg.socketDir, 'data', 'log');
      const per = new Map<string, [number, number]>();
      for (const f of readdirSync(logDir))
        for (const m of readFileSync(join(logDir, f), 'utf8').matchAll(
          /duration: ([\d.]+) ms\s+(?:statement|execute [^:]*): ([^\n]{0,60})/g,
        )) {
          const k = m[2]!.replace(/\s+/g, ' ');
          const e = per.get(k) ?? [0, 0];
          e[0] += Number(m[1]);
          e[1]++;
          per.set(k, e);
        }
      for (const [k, [ms, n]] of [...per].sort((a, b) => b[1][0] - a[1][0]).slice(0, 8))
        console.log(`pg log: ${ms.toFixed(0)} ms, ${n} statements: ${k}`);
    }
    const records = Number((await c.query<{ n: string }>('SELECT count(*) AS n FROM outpost.records')).rows[0]!.n);
    const exportRowsPerS = (total + records) / exportS;

    // Baseline: the same rows with a plain server-side COPY into tables of the same definition.
    const dump = join(pg.socketDir, 'dump');
    mkdirSync(dump);
    chmodSync(dump, 0o777);
    await c.query(`COPY outpost.frames TO '${dump}/frames.copy'`);
    await c.query(`COPY outpost.records TO '${dump}/records.copy'`);
    await c.query('CREATE TABLE public.f (LIKE outpost.frames INCLUDING ALL)');
    await c.query('CREATE TABLE public.r (LIKE outpost.records INCLUDING ALL)');
    const copyPgCpu0 = pgCpuS(pg.socketDir);
    t = performance.now();
    await c.query('BEGIN');
    await c.query(`COPY public.f FROM '${dump}/frames.copy'`);
    await c.query(`COPY public.r FROM '${dump}/records.copy'`);
    await c.query('COMMIT');
    const copyS = (performance.now() - t) / 1000;
    const copyPgCpuS = pgCpuS(pg.socketDir) - copyPgCpu0;
    await pgMinuteQuery(c);
    await c.end();
    const copyRowsPerS = (total + records) / copyS;
    rows.push(
      {
        figure: `${q}export to PostgreSQL, ${total} frames a week old (catch-up), rows/s (frames + records)`,
        value: Math.round(exportRowsPerS),
        unit: 'rows/s',
        baseline: 'plain COPY of the same rows, same table definitions',
        baselineValue: Math.round(copyRowsPerS),
        ratio: exportRowsPerS / copyRowsPerS,
        goal: '>= 0.5x',
        pass: exportRowsPerS / copyRowsPerS >= 0.5,
      },
      { figure: `${q}export to PostgreSQL, frames/s`, value: Math.round(total / exportS), unit: 'frames/s' },
      {
        // CPU seconds, which a loaded box inflates far less than wall time (the bench's own polling included).
        figure: `${q}export to PostgreSQL, CPU (gateway ${gatewayCpuS.toFixed(2)} s with its start + PostgreSQL)`,
        value: gatewayCpuS + exportPgCpuS,
        unit: 's',
        baseline: 'PostgreSQL CPU of the plain COPY',
        baselineValue: copyPgCpuS,
        ratio: (gatewayCpuS + exportPgCpuS) / copyPgCpuS,
      },
      {
        figure: `${q}of it PostgreSQL (every backend, the bench's polling by key included)`,
        value: exportPgCpuS,
        unit: 's',
      },
      { figure: `${q}catch-up of ${total} frames after a week offline, wall time`, value: exportS, unit: 's' },
      { figure: `${q}catch-up of ${total} frames, gateway CPU time (start included)`, value: gatewayCpuS, unit: 's' },
      {
        figure: `${q}catch-up of ${total} frames, gateway peak RSS`,
        value: Math.round(peak),
        unit: 'MB',
        baseline: 'the same gateway idle on the same directory, no sink',
        baselineValue: Math.round(idleRss),
        ratio: peak / idleRss,
        goal: `<= ${Math.round(idleRss + 50)} MB`,
        pass: peak <= idleRss + 50,
      },
      {
        figure: `${q}of it anonymous (heap, native), peak`,
        value: Math.round(peakAnon),
        unit: 'MB',
        baseline: 'idle',
        baselineValue: Math.round(idleAnon),
      },
      {
        figure: `${q}of it file-backed (node, addons, lmdb's map), peak`,
        value: Math.round(peakFile),
        unit: 'MB',
        baseline: 'idle',
        baselineValue: Math.round(idleFile),
      },
    );
  } finally {
    await pg.remove();
    tmp.cleanup();
  }
}

/**
 * PostgreSQL keeps hour rollups only; minutes are `minute_rollups(…)` over `records`. One
 * series of 30 days at one reading a minute (43 200 records rows, written by SQL), its minutes
 * computed on demand and folded into hourly points, against the same minutes read from a table
 * that stores them (as the sink kept them before), p50/p99 of the round trip.
 */
async function pgMinuteQuery(c: import('pg').Client): Promise<void> {
  // A schema before migration 2 (a baseline built from older code) has no minute_rollups.
  if ((await c.query(`SELECT 1 FROM pg_proc WHERE proname = 'minute_rollups'`)).rowCount === 0) return;
  await c.query(
    `INSERT INTO outpost.records (device, boot, seq, idx, name, time, value, heard_by, policy)
     SELECT 'pg-30d', 1, i, 0, 'pg-30d:temp', now() - interval '30 days' + i * interval '1 minute', sin(i / 100.0), 'gw', 'default'
     FROM generate_series(0, 43199) i`,
  );
  await c.query(
    `CREATE TABLE public.m (device text, name text, bucket timestamptz, count bigint, min float8, mean float8,
       max float8, sum float8, PRIMARY KEY (device, name, bucket))`,
  );
  await c.query(
    `INSERT INTO public.m SELECT 'pg-30d', 'pg-30d:temp', m.*
     FROM outpost.minute_rollups('pg-30d', 'pg-30d:temp', '-infinity', 'infinity') m`,
  );
  await c.query('ANALYZE outpost.records');
  await c.query('ANALYZE public.m');
  const args = ['pg-30d', 'pg-30d:temp', new Date(Date.now() - 31 * 86_400_000), new Date()];
  const time = async (sql: string): Promise<{ p50: number; p99: number; n: number }> => {
    const ms: number[] = [];
    let n = 0;
    for (let i = 0; i < (quick ? 40 : 200); i++) {
      const t = performance.now();
      n = (await c.query(sql, args)).rowCount ?? 0;
      ms.push(performance.now() - t);
    }
    ms.sort((a, b) => a - b);
    return { p50: ms[Math.floor(ms.length / 2)]!, p99: ms[Math.ceil(ms.length * 0.99) - 1]!, n };
  };
  // Hourly points from the minutes, as the local bench's query (721 rows back, not 43 200).
  const hourly = (from: string): string =>
    `SELECT date_trunc('hour', bucket) AS h, sum(count), min(min), max(max), sum(sum) FROM ${from} GROUP BY 1 ORDER BY 1`;
  const onDemand = await time(hourly('outpost.minute_rollups($1, $2, $3, $4)'));
  const stored = await time(hourly('public.m WHERE device = $1 AND name = $2 AND bucket >= $3 AND bucket < $4'));
  rows.push(
    {
      figure: `${q}PostgreSQL, 30 days of 1-minute aggregates of one series → ${onDemand.n} hourly points, from records (minute_rollups), p99`,
      value: onDemand.p99,
      unit: 'ms',
      baseline: 'the same minutes read from a table storing them, p99',
      baselineValue: stored.p99,
      ratio: onDemand.p99 / stored.p99,
    },
    { figure: `${q}the same, p50 (stored minutes: ${stored.p50.toFixed(1)} ms)`, value: onDemand.p50, unit: 'ms' },
  );
}

/** 30 days of one reading a minute for one series (and a neighbour), then the aggregate query over them. */
async function rollupBench(): Promise<void> {
  const tmp = tempDir('outpost-bench-rollups-');
  const store = Store.open(tmp.dir);
  try {
    const now = Date.now();
    const from = now - 30 * 86_400_000;
    const rollups = new RollupStore(store, { 60: 31 * 86_400_000, 3600: 731 * 86_400_000 });
    // One reading a minute for 30 days, per series, through RollupStore.deliver (its real write path).
    for (const id of ['rol-a', 'rol-b']) {
      let batch: ExportFrame[] = [];
      for (let i = 0; i < 30 * 1440; i++) {
        const time = from + i * 60_000;
        const frame = reading(id, undefined, i, time);
        batch.push({
          device: id,
          boot: 1,
          seq: i,
          rxTime: time,
          transport: 'mqtt',
          frame,
          author: '00',
          policy: 'default',
          block: '00',
          index: 0,
        });
        if (batch.length === 10_000) {
          await rollups.deliver(batch);
          batch = [];
        }
      }
      await rollups.deliver(batch);
      if (quick) break; // the neighbour series only in the full run
    }
    const runs = quick ? 60 : 300;
    const time = (fn: () => number): { p50: number; p99: number; n: number } => {
      const ms: number[] = [];
      let n = 0;
      for (let i = 0; i < runs; i++) {
        const t = performance.now();
        n = fn();
        ms.push(performance.now() - t);
      }
      ms.sort((a, b) => a - b);
      return { p50: ms[Math.floor(runs / 2)]!, p99: ms[Math.min(runs - 1, Math.ceil(runs * 0.99) - 1)]!, n };
    };
    // Hourly points from the minute buckets (base 60): every one of the 43 200 buckets is read.
    const agg = time(() => rollups.query('rol-a', 'rol-a:temp', from, now, 3_600_000, 60).length);
    const api = time(() => rollups.query('rol-a', 'rol-a:temp', from, now, 3_600_000).length);
    // The layout before packed minute rows: one lmdb entry per minute bucket, read raw (same run).
    const entries = store.root.openDB<object, [string, string, number, number]>({ name: 'bench-minute-entries' });
    await store.root.transaction(() => {
      for (const [t, b] of rollups.buckets('rol-a', 'rol-a:temp', 60, from, now))
        entries.putSync(['rol-a', 'rol-a:temp', 60, t], b);
    });
    const raw = time(() => {
      let n = 0;
      for (const _ of entries.getRange({
        start: ['rol-a', 'rol-a:temp', 60, from],
        end: ['rol-a', 'rol-a:temp', 60, now],
      }))
        n++;
      return n;
    });
    rows.push({
      figure: `aggregate query, 30 days of 1-minute rollups of one series (${raw.n} buckets → ${agg.n} hourly points), p99`,
      value: agg.p99,
      unit: 'ms',
      baseline: 'the same buckets as one lmdb entry per minute (the layout before), read raw, p99',
      baselineValue: raw.p99,
      ratio: agg.p99 / raw.p99,
      goal: '<= 20 ms',
      pass: agg.p99 <= 20,
    });
    rows.push({ figure: 'aggregate query, 30 days of 1-minute rollups, p50', value: agg.p50, unit: 'ms' });
    rows.push({
      figure: 'aggregate query, 30 days hourly as /api/series answers it (from the 1-hour rollups), p99',
      value: api.p99,
      unit: 'ms',
    });
  } finally {
    await store.close();
    tmp.cleanup();
  }
}

let t0 = performance.now();
if (values['export-only'] !== true) {
  await rollupBench();
  console.log(`rollups: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}
t0 = performance.now();
if (values['rollups-only'] !== true) {
  await exportBench();
  console.log(`export: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}
for (const r of rows)
  console.log(
    `${r.figure}: ${r.value} ${r.unit}${r.ratio !== undefined ? ` (${r.ratio.toFixed(2)}x ${r.baseline})` : ''}`,
  );
mkdirSync(new URL('results', import.meta.url), { recursive: true });
// --rollups-only and --export-only print their rows and leave the full run's results alone.
if (values['rollups-only'] !== true && values['export-only'] !== true)
  writeFileSync(
    new URL('results/export.json', import.meta.url),
    `${JSON.stringify({ at: new Date().toISOString(), quick, rows }, null, 2)}\n`,
  );
