/**
 * `gateway start` runs compiled JavaScript: bin/gateway.js runs dist/ (built from the
 * current sources), and neither the gateway, its verify workers nor its simulated fleet
 * loads a TypeScript loader or a .ts file, while it is ready and storing frames. The
 * module recorder (test/helpers/record-modules.mjs) sees what each process resolved; run
 * from source (OUTPOST_FROM_SOURCE=1) it does see tsx, so the check can fail.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/env.js';

const root = new URL('../../', import.meta.url).pathname;
const recorder = new URL('../helpers/record-modules.mjs', import.meta.url).pathname;
const debugRecorder = new URL('../helpers/record-debug.cjs', import.meta.url).pathname;

interface ProcessRecord {
  readonly argv: string[];
  readonly execArgv: string[];
  readonly modules: string[];
}

/** What each process under `dir` recorded (record-modules.mjs), by its script. */
function records(dir: string): ProcessRecord[] {
  return readdirSync(dir).map((f) => {
    const [head, ...modules] = readFileSync(join(dir, f), 'utf8').trim().split('\n');
    return { ...(JSON.parse(head!) as { argv: string[]; execArgv: string[] }), modules };
  });
}

const isTypeScriptLoad = (url: string): boolean => url.includes('/node_modules/tsx/') || /\.[mc]?ts$/.test(url);

const recordEnv = (dir: string) => ({
  ...process.env,
  NODE_OPTIONS: `--import ${recorder}`,
  OUTPOST_MODULE_LOG: dir,
});

describe('compiled start', () => {
  const tmp = tempDir('outpost-compiled-');
  let child: ChildProcess | undefined;
  afterAll(() => {
    child?.kill('SIGKILL');
    tmp.cleanup();
  });

  it('gateway start (with its fleet and verify workers) loads dist/ only, no TypeScript loader, and stores frames', async () => {
    const mods = join(tmp.dir, 'modules');
    mkdirSync(mods);
    const cfg = join(tmp.dir, 'outpost.yaml');
    writeFileSync(
      cfg,
      [
        `gateway: { id: gw-compiled, dataDir: ${JSON.stringify(join(tmp.dir, 'data'))} }`,
        'mqtt: { port: 0 }',
        'api: { port: 0 }',
        'ingest: { verifyWorkers: 1 }',
        'simulate: { devices: 2, rate: 5 }',
        'status: { intervalSeconds: 1 }',
      ].join('\n'),
    );
    child = spawn(process.execPath, ['bin/gateway.js', 'start', '--config', cfg], {
      cwd: root,
      env: recordEnv(mods),
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let ready = false;
    const stored = await new Promise<number>((resolve, reject) => {
      child!.once('exit', (code) => reject(new Error(`gateway exited (${code})`)));
      createInterface({ input: child!.stdout! }).on('line', (line) => {
        const rec = JSON.parse(line) as { event?: string; framesStored?: number };
        if (rec.event === 'ready') ready = true;
        if (ready && (rec.framesStored ?? 0) > 0) resolve(rec.framesStored!);
      });
    });
    expect(stored).toBeGreaterThan(0);
    const exited = new Promise<number | null>((r) => child!.once('exit', r));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);

    const procs = records(mods);
    const gw = procs.find((p) => p.argv[1]?.endsWith('bin/gateway.js'));
    const fleet = procs.find((p) => p.argv[1]?.endsWith('dist/firmware-sim/cli.js') && p.argv[2] === 'fleet');
    expect(gw?.execArgv).toEqual([]);
    expect(gw?.modules).toContain(`file://${root}dist/gateway/cli.js`);
    expect(gw?.modules).toContain(`file://${root}dist/gateway/ingest/verify-worker.js`);
    expect(fleet?.execArgv).toEqual(['--max-semi-space-size=8']); // the demo fleet's young-generation cap, no loader
    for (const p of procs) expect(p.modules.filter(isTypeScriptLoad), p.argv.join(' ')).toEqual([]);
  }, 60_000);

  it("the compiled gateway hands mqtt-packet quiet-debug.ts's no-op loggers, not the real `debug` (its bundle imports aedes before any code of its own)", async () => {
    const log = join(tmp.dir, 'debug.log');
    const env = { ...process.env, OUTPOST_DEBUG_LOG: log, DEBUG: '' };
    await promisify(execFile)(process.execPath, ['--require', debugRecorder, 'bin/gateway.js', '--version'], {
      cwd: root,
      env,
    });
    // Its parser and writer (quiet-debug's own require of the real `debug` shows as mqtt.js's).
    const lines = readFileSync(log, 'utf8')
      .trim()
      .split('\n')
      .filter((l) => /\/mqtt-packet\/(parser|writeToStream)\.js /.test(l));
    expect(lines.map((l) => l.split(' ').at(-1))).toEqual(['quiet', 'quiet']);
  });

  it('the same recorder sees tsx and .ts sources when run from source (OUTPOST_FROM_SOURCE=1)', async () => {
    const mods = join(tmp.dir, 'modules-source');
    mkdirSync(mods);
    await promisify(execFile)(process.execPath, ['bin/gateway.js', '--version'], {
      cwd: root,
      env: { ...recordEnv(mods), OUTPOST_FROM_SOURCE: '1' },
    });
    const [p] = records(mods);
    expect(p!.modules.some((u) => u.includes('/node_modules/tsx/'))).toBe(true);
    expect(p!.modules).toContain(`file://${root}gateway/cli.ts`);
  });
});
