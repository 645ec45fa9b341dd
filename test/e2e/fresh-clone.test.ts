/**
 * A new user's first minute, on a machine with Node.js and none of the optional system
 * tools: `git clone`, `npm ci` (offline from the npm cache) and `npm start` with PATH
 * stripped of every tool in test/helpers/system-tools.ts. The gateway must come up and
 * store frames from its simulated fleet, compiled by `npm ci` (no rebuild at start); a
 * changed source is rebuilt on the next start; and a test file that needs a missing tool
 * ends its run with the skip report naming it and its install command.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/env.js';
import { strippedPath } from '../helpers/stripped-path.js';
import { needs, SYSTEM_TOOLS } from '../helpers/system-tools.js';

const root = new URL('../../', import.meta.url).pathname;
const run = promisify(execFile);

/** Every optional command a test may look for, none of which the clone may find. */
const optional = Object.values(SYSTEM_TOOLS).flatMap((t) => ('cmd' in t.probe ? [t.probe.cmd] : []));

describe('a fresh clone on a machine with only Node.js', needs('git'), () => {
  const tmp = tempDir('outpost-clone-');
  let child: ChildProcess | undefined;
  afterAll(() => {
    child?.kill('SIGKILL');
    tmp.cleanup(); // a whole node_modules: slow on a loaded disk
  }, 120_000);

  it('npm ci && npm start: ready and storing frames; the skip report names each missing tool', async () => {
    const repo = join(tmp.dir, 'repo');
    await run('git', ['clone', '--quiet', root, repo]);
    const { CI: _ci, OUTPOST_TEST_ALL: _all, NODE_OPTIONS: _no, ...rest } = process.env;
    const env = { ...rest, PATH: strippedPath(tmp.dir, optional) };
    await run('npm', ['ci', '--prefer-offline', '--no-audit', '--no-fund'], { cwd: repo, env, timeout: 180_000 });

    // ./outpost.yaml in the clone (as a user would write one): free ports, a small fleet, a status line a second.
    writeFileSync(
      join(repo, 'outpost.yaml'),
      'mqtt: { port: 0 }\napi: { port: 0 }\nsimulate: { devices: 3, rate: 2 }\nstatus: { intervalSeconds: 1 }\n',
    );
    child = spawn('npm', ['start'], { cwd: repo, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let stderr = '';
    child.stderr!.on('data', (b: Buffer) => {
      stderr += b.toString();
    });
    let ready = false;
    const status = await new Promise<{ framesStored: number; devicesOnline: number }>((resolve, reject) => {
      child!.once('exit', (code) => reject(new Error(`npm start exited (${code}): ${stderr}`)));
      createInterface({ input: child!.stdout! }).on('line', (line) => {
        if (!line.startsWith('{')) return; // npm's own "> node bin/gateway.js start" banner
        const rec = JSON.parse(line) as { event?: string; framesStored?: number; devicesOnline?: number };
        if (rec.event === 'ready') ready = true;
        if (ready && (rec.framesStored ?? 0) > 0) resolve(rec as { framesStored: number; devicesOnline: number });
      });
    });
    expect(status.framesStored).toBeGreaterThan(0);
    const exited = new Promise((r) => child!.once('exit', r));
    process.kill(-child.pid!, 'SIGTERM'); // npm and the gateway under it
    await exited;
    expect(stderr).not.toMatch(/rebuilt/); // npm ci built dist/ from these very sources

    // A changed source is rebuilt before the next start.
    appendFileSync(join(repo, 'gateway/cli/identity.ts'), '\n// a local change\n');
    const after = await run(process.execPath, ['bin/gateway.js', '--version'], { cwd: repo, env });
    expect(after.stderr).toMatch(/sources changed since dist\/ was built: rebuilt/);

    // One tool-needing test file, run as the user would: skipped, and the report says why.
    const t = await run('npx', ['vitest', 'run', 'test/integration/pi-deploy.test.ts'], {
      cwd: repo,
      env,
      timeout: 120_000,
    });
    expect(t.stdout).toMatch(/Tests\s.*4 passed.*2 skipped/);
    expect(t.stdout).toContain('systemd-analyze: not installed (sudo apt-get install systemd) — 2 tests skipped');
    expect(t.stdout).toContain('all of them: npm run setup:system');
  }, 300_000);
});
