/**
 * The small-board memory profile as a user starts it: `npm run start:small`'s node options and
 * `--small` run a gateway with one verify worker that stores its simulated fleet's frames and
 * does not warn; `gateway start --small` without the node option warns, naming it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { startScript } from '../../bench/lib/gateway-process.js';
import { tempDir } from '../helpers/env.js';

const root = new URL('../../', import.meta.url).pathname;

interface LogLine {
  level?: number | string;
  event?: string;
  msg?: string;
  key?: string;
  memory?: string;
  verifyWorkers?: number;
  framesStored?: number;
}

describe('memory profile small', () => {
  const tmp = tempDir('outpost-small-');
  let child: ChildProcess | undefined;
  afterEach(() => {
    child?.kill('SIGKILL');
  });

  /** Runs the gateway until `done` says so from the lines so far, then stops it with SIGTERM (exit 0). */
  async function run(
    nodeArgs: string[],
    args: string[],
    done: (lines: LogLine[]) => boolean,
    env: Record<string, string> = {},
  ): Promise<LogLine[]> {
    const name = `gw${Math.random().toString(16).slice(2, 8)}`;
    const cfg = join(tmp.dir, `${name}.yaml`);
    writeFileSync(
      cfg,
      [
        `gateway: { id: ${name}, dataDir: ${JSON.stringify(join(tmp.dir, name))} }`,
        'mqtt: { port: 0 }',
        'api: { enabled: false }',
        'simulate: { devices: 2, rate: 5 }',
        'status: { intervalSeconds: 1 }',
      ].join('\n'),
    );
    child = spawn(process.execPath, [...nodeArgs, 'bin/gateway.js', ...args, '--config', cfg], {
      cwd: root,
      env: { ...process.env, ...env, NODE_OPTIONS: '' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const lines: LogLine[] = [];
    await new Promise<void>((resolve, reject) => {
      child!.once('exit', (code) => reject(new Error(`gateway exited (${code})`)));
      createInterface({ input: child!.stdout! }).on('line', (l) => {
        lines.push(JSON.parse(l) as LogLine);
        if (done(lines)) resolve();
      });
    });
    const exited = new Promise<number | null>((r) => child!.once('exit', r));
    child!.kill('SIGTERM');
    expect(await exited).toBe(0);
    return lines;
  }

  it('npm run start:small: one verify worker, frames stored, no young-generation warning', async () => {
    const { env, nodeArgs, args } = startScript(root, 'start:small');
    expect(args).toEqual(['--small']);
    const lines = await run(nodeArgs, ['start', ...args], (ls) => ls.some((l) => (l.framesStored ?? 0) > 0), env);
    const starting = lines.find((l) => l.verifyWorkers !== undefined);
    expect(starting).toMatchObject({ memory: 'small', verifyWorkers: 1 });
    expect(lines.filter((l) => l.key === 'gateway.memory')).toEqual([]);
  }, 60_000);

  it('gateway start --small without the node option warns, naming it', async () => {
    const lines = await run([], ['start', '--small'], (ls) => ls.some((l) => l.event === 'ready'));
    const warning = lines.find((l) => l.key === 'gateway.memory');
    expect(warning?.msg).toMatch(/start it with --max-semi-space-size=2/);
    expect(lines.find((l) => l.verifyWorkers !== undefined)).toMatchObject({ memory: 'small', verifyWorkers: 1 });
  }, 60_000);

  it('the standard profile neither limits verify workers to one nor warns', async () => {
    const lines = await run([], ['start'], (ls) => ls.some((l) => l.event === 'ready'));
    expect(lines.find((l) => l.verifyWorkers !== undefined)).toMatchObject({ memory: 'standard' });
    expect(lines.filter((l) => l.key === 'gateway.memory')).toEqual([]);
  }, 60_000);
});
