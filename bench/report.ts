/**
 * `npm run bench [-- --quick] [--only ingest,sync]`: the one benchmark report.
 *
 * Runs every bench in its own child process, one after another (they share a small machine,
 * so never in parallel), passing `--quick` through. A bench is a `bench/<name>.ts` that writes
 * `bench/results/<name>.json` shaped `{at, quick, rows: [{figure, value, unit, baseline?,
 * baselineValue?, ratio?, goal?, pass?}]}`; the report discovers them (helpers such as
 * load-generator.ts and anything under bench/lib/ are not run), so a new bench appears as soon
 * as it lands. A bench that exits non-zero, times out or writes no fresh JSON becomes a failed
 * row; the report goes on with the rest.
 *
 * Prints one table (capability, figure, value, baseline, ratio, goal, pass/FAIL) and writes
 * bench/results/report.json, bench/results/report.svg (how far each goal is met) and each
 * bench's own output to bench/results/<name>.log.
 */
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { capabilityOf, discover } from './lib/discover.js';
import { type ReportRow, renderSvg } from './lib/report-svg.js';

const { values } = parseArgs({
  options: { quick: { type: 'boolean' }, only: { type: 'string' }, list: { type: 'boolean' } },
});
const quick = values.quick === true;
const benchDir = fileURLToPath(new URL('.', import.meta.url));
const resultsDir = fileURLToPath(new URL('./results/', import.meta.url));

/** A bench that takes longer is stopped and reported as failed. */
const TIMEOUT_S = quick ? 60 : 1200;

interface BenchRun {
  name: string;
  capability: string;
  seconds: number;
  exit: number | null;
  ok: boolean;
  error?: string;
  rows: number;
  /** CPU seconds (user + system) of the bench and its children. */
  cpu: number | undefined;
  /** 1-minute load average when the bench ended (the machine is shared: context for the figures). */
  load: number;
}

interface BenchRow {
  figure?: unknown;
  value?: unknown;
  unit?: unknown;
  baseline?: unknown;
  baselineValue?: unknown;
  ratio?: unknown;
  goal?: unknown;
  pass?: unknown;
}

const num = (x: unknown): number | undefined => (typeof x === 'number' && Number.isFinite(x) ? x : undefined);
const str = (x: unknown): string | undefined => (typeof x === 'string' && x !== '' ? x : undefined);

function runOne(
  name: string,
): Promise<{ exit: number | null; seconds: number; cpu: number | undefined; tail: string; timedOut: boolean }> {
  return new Promise((resolve) => {
    const log = createWriteStream(`${resultsDir}${name}.log`);
    const t0 = performance.now();
    const cmd = [process.execPath, '--import', 'tsx', `${benchDir}${name}.ts`, ...(quick ? ['--quick'] : [])];
    // /usr/bin/time reports the CPU seconds of the bench and every process it waited for.
    const cpuFile = `${resultsDir}${name}.cpu`;
    rmSync(cpuFile, { force: true });
    const timed = existsSync('/usr/bin/time') ? ['/usr/bin/time', '-f', '%U %S', '-o', cpuFile, ...cmd] : cmd;
    const child = spawn(timed[0]!, timed.slice(1), {
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group, so a timeout also ends what it started (load generator, socat).
      detached: true,
    });
    let tail = '';
    const keep = (b: Buffer): void => {
      log.write(b);
      tail = (tail + b.toString()).slice(-2000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, TIMEOUT_S * 1000);
    child.on('close', (code) => {
      clearTimeout(timer);
      log.end();
      let cpu: number | undefined;
      try {
        const [u, sy] = readFileSync(cpuFile, 'utf8').trim().split('\n').pop()!.split(' ').map(Number);
        cpu = u! + sy!;
        rmSync(cpuFile, { force: true });
      } catch {
        cpu = undefined;
      }
      resolve({
        exit: code,
        seconds: (performance.now() - t0) / 1000,
        cpu: Number.isFinite(cpu) ? cpu : undefined,
        tail,
        timedOut,
      });
    });
  });
}

/** The most telling line of a failed bench's output: its last error line, else its last line. */
function lastLine(s: string): string {
  const lines = s
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !/^Node\.js v\d/.test(l) && !l.startsWith('at '));
  const err = lines.filter((l) => /error|Error|FAIL|timed out/.test(l)).pop();
  return (err ?? lines.pop() ?? '').slice(0, 200);
}

async function main(): Promise<void> {
  mkdirSync(resultsDir, { recursive: true });
  let names = discover(readdirSync(benchDir), (f) => readFileSync(`${benchDir}${f}`, 'utf8'));
  if (values.list) return void console.log(names.join('\n'));
  if (values.only) {
    const want = new Set(values.only.split(','));
    names = names.filter((n) => want.has(n));
  }
  const started = Date.now();
  const runs: BenchRun[] = [];
  const rows: ReportRow[] = [];
  console.error(
    `outpost bench report (${quick ? 'quick' : 'full'}) on ${cpus().length} cores, node ${process.version}: ${names.join(', ')}`,
  );
  for (const name of names) {
    const capability = capabilityOf(name);
    const before = Date.now();
    process.stderr.write(`  ${name.padEnd(16)} `);
    const r = await runOne(name);
    const file = `${resultsDir}${name}.json`;
    let parsed: { at?: unknown; date?: unknown; rows?: unknown } | undefined;
    let error: string | undefined;
    try {
      parsed = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as typeof parsed) : undefined;
    } catch (e) {
      error = `unreadable ${name}.json: ${(e as Error).message}`;
    }
    const at = Date.parse(String(parsed?.at ?? parsed?.date ?? ''));
    const fresh = parsed !== undefined && Number.isFinite(at) && at >= before - 1000 && Array.isArray(parsed.rows);
    if (r.timedOut) error = `timed out after ${TIMEOUT_S} s`;
    else if (r.exit !== 0) error = `exit ${r.exit}: ${lastLine(r.tail)}`;
    else if (!fresh) error ??= `wrote no fresh bench/results/${name}.json`;
    let count = 0;
    if (fresh) {
      for (const raw of parsed!.rows as BenchRow[]) {
        const figure = str(raw.figure);
        const value = num(raw.value);
        // Section headings some benches print (no value, no unit) are not figures.
        if (figure === undefined || (value === undefined && str(raw.unit) === undefined)) continue;
        const row: ReportRow = {
          capability,
          bench: name,
          figure,
          value,
          unit: str(raw.unit) ?? '',
          baseline: str(raw.baseline),
          baselineValue: num(raw.baselineValue),
          ratio: num(raw.ratio),
          goal: str(raw.goal),
          pass: typeof raw.pass === 'boolean' ? raw.pass : undefined,
        };
        rows.push(row);
        count++;
      }
    }
    if (error)
      rows.push({
        capability,
        bench: name,
        figure: `${name} bench run: ${error}`,
        value: undefined,
        unit: '',
        goal: 'runs',
        pass: false,
        note: error,
      });
    const load = Number(loadavg()[0]!.toFixed(1));
    runs.push({
      name,
      capability,
      seconds: r.seconds,
      cpu: r.cpu,
      exit: r.exit,
      ok: error === undefined,
      error,
      rows: count,
      load,
    });
    process.stderr.write(
      `${r.seconds.toFixed(1).padStart(6)} s  cpu ${(r.cpu ?? NaN).toFixed(1).padStart(5)} s  load ${String(load).padStart(4)}  ${error ? 'FAILED: ' + error : `${count} rows`}\n`,
    );
  }
  const seconds = (Date.now() - started) / 1000;
  if (names.length > 0 && !values.only) {
    const cpu = runs.reduce((t, r) => t + (r.cpu ?? 0), 0);
    const load = runs.reduce((t, r) => t + r.load, 0) / runs.length;
    rows.push({
      capability: 'report',
      bench: 'report',
      figure: `CPU time of all benches (mean 1-min load ${load.toFixed(1)} on ${cpus().length} cores)`,
      value: Number(cpu.toFixed(1)),
      unit: 's',
      baseline: 'wall time',
      baselineValue: Number(((Date.now() - started) / 1000).toFixed(1)),
      ratio: Number((cpu / ((Date.now() - started) / 1000)).toFixed(3)),
    });
    // The quick report must stay a quick check.
    rows.push(
      quick
        ? {
            capability: 'report',
            bench: 'report',
            figure: 'npm run bench -- --quick, total wall time',
            value: seconds,
            unit: 's',
            goal: '<= 120 s',
            pass: seconds <= 120,
          }
        : {
            capability: 'report',
            bench: 'report',
            figure: 'npm run bench, total wall time',
            value: seconds,
            unit: 's',
          },
    );
  }
  printTable(rows);
  const withGoal = rows.filter((r) => r.pass !== undefined);
  const failed = withGoal.filter((r) => r.pass === false);
  console.log(
    `\n${rows.length} figures, ${withGoal.length} with a goal: ${withGoal.length - failed.length} pass, ${failed.length} fail; ${runs.filter((r) => !r.ok).length} of ${runs.length} benches failed to run; ${seconds.toFixed(0)} s`,
  );
  const at = new Date(started).toISOString();
  // A partial run (--only) must not overwrite the whole report.
  const out = values.only ? 'report-partial' : 'report';
  writeFileSync(
    `${resultsDir}${out}.json`,
    JSON.stringify({ at, quick, node: process.version, cores: cpus().length, seconds, benches: runs, rows }, null, 2) +
      '\n',
  );
  writeFileSync(
    `${resultsDir}${out}.svg`,
    renderSvg(rows, `outpost bench ${quick ? '--quick ' : ''}${values.only ? `--only ${values.only} ` : ''}${at}`),
  );
  console.log(`wrote bench/results/${out}.json, bench/results/${out}.svg`);
}

function fmt(x: number | undefined): string {
  if (x === undefined) return '';
  const a = Math.abs(x);
  if (a === 0) return '0';
  if (a >= 100) return Math.round(x).toLocaleString('en-US');
  if (a >= 1 && a < 10) return x.toPrecision(4).replace(/\.?0+$/, '');
  if (a >= 1) return x.toFixed(2).replace(/\.?0+$/, '');
  return x.toPrecision(3);
}

function printTable(rows: readonly ReportRow[]): void {
  const cells = rows.map((r) => [
    r.capability,
    r.figure,
    r.value === undefined ? '' : `${fmt(r.value)} ${r.unit}`.trim(),
    r.baseline ? `${r.baseline}${r.baselineValue !== undefined ? ` (${fmt(r.baselineValue)})` : ''}` : '',
    r.ratio !== undefined ? `${fmt(r.ratio)}x` : '',
    r.goal ?? '',
    r.pass === undefined ? '' : r.pass ? 'pass' : 'FAIL',
  ]);
  const head = ['capability', 'figure', 'value', 'baseline', 'ratio', 'goal', 'result'];
  const max = [14, 84, 16, 40, 10, 12, 6];
  const cut = (s: string, n: number): string => (s.length > n ? s.slice(0, n - 1) + '…' : s);
  const widths = head.map((h, c) => Math.min(max[c]!, Math.max(h.length, ...cells.map((r) => r[c]!.length))));
  const line = (r: string[]): string =>
    r
      .map((x, c) => (c === 4 ? cut(x, widths[c]!).padStart(widths[c]!) : cut(x, widths[c]!).padEnd(widths[c]!)))
      .join('  ')
      .trimEnd();
  console.log(line(head));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of cells) console.log(line(r));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
