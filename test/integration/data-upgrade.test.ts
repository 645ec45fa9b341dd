/**
 * Upgrading a data directory written by the release that stored frames twice (format 1,
 * test/fixtures/data-v1, made by that release's code: regenerate.sh). The real `gateway start`
 * upgrades it at start; it is SIGKILLed at each step of the upgrade in turn and started again,
 * and afterwards every frame is there once (own, the sibling's, the one that had no block),
 * `audit verify` is clean and the frame with no block was logged once. A directory of a newer
 * release is refused with a clear message, by `gateway start` and by the CLI alike.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { open } from 'lmdb';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/env.js';

const run = promisify(execFile);
const gatewayBin = new URL('../../bin/gateway.js', import.meta.url).pathname;
const fixtureDir = new URL('../fixtures/data-v1/', import.meta.url).pathname;
const fixture = JSON.parse(readFileSync(join(fixtureDir, 'fixture.json'), 'utf8')) as {
  gateway: string;
  sibling: { id: string; publicKey: string };
  frames: Record<string, [number, number, number][]>;
  heardBySibling: Record<string, number>;
  ownHeadSeq: number;
  devices: Record<string, string>;
};
const expected = Object.entries(fixture.frames).flatMap(([d, ranges]) =>
  ranges.flatMap(([boot, lo, hi]) => Array.from({ length: hi - lo + 1 }, (_, i) => `${d}/${boot}/${lo + i}`)),
);

function setUp(dir: string): string {
  const data = join(dir, 'data');
  cpSync(join(fixtureDir, 'data'), data, { recursive: true });
  const config = join(dir, 'outpost.yaml');
  writeFileSync(
    config,
    [
      `gateway: { id: ${fixture.gateway}, dataDir: ${JSON.stringify(data)} }`,
      'mqtt: { port: 0 }',
      'api: { enabled: false }',
      'simulate: { devices: 0 }',
      `sync: { enabled: false, peers: [{ id: ${fixture.sibling.id}, publicKey: "${fixture.sibling.publicKey}", url: "tcp://127.0.0.1:7878" }] }`,
      'devices:',
      ...['dev-a', 'dev-b'].map((d) => `  - { id: ${d}, publicKey: "${fixture.devices[d]}" }`),
    ].join('\n'),
  );
  return config;
}

/** `gateway start`; `until(line)` says when to SIGKILL it (or, on "ready", to stop it cleanly). */
function startUntil(
  config: string,
  until: (rec: { msg?: string; event?: string; step?: string }) => 'kill' | 'stop' | undefined,
): Promise<{ lines: { msg?: string; event?: string; step?: string }[]; killed: boolean }> {
  const child: ChildProcess = spawn(process.execPath, [gatewayBin, 'start', '--config', config, '--no-simulate'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: { msg?: string; event?: string; step?: string }[] = [];
  let killed = false;
  createInterface({ input: child.stderr! }).on('line', () => {});
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const rec = JSON.parse(line) as { msg?: string; event?: string; step?: string };
    lines.push(rec);
    const what = until(rec);
    if (what === 'kill' && !killed) {
      killed = true;
      child.kill('SIGKILL');
    } else if (what === 'stop') child.kill('SIGTERM');
  });
  return new Promise((resolve) => child.once('exit', () => resolve({ lines, killed })));
}

const cli = async (args: string[]): Promise<string> =>
  (await run(process.execPath, [gatewayBin, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 })).stdout;

describe('data directory upgrade (format 1 → 2)', () => {
  const tmp = tempDir('outpost-upgrade-');
  afterAll(() => tmp.cleanup());

  it('SIGKILL at each step of the upgrade, then a start that finishes it: every frame once, audit clean, nothing logged twice', async () => {
    const config = setUp(join(tmp.dir, 'kill'));
    const steps = ['upgrading', 'unlogged', 'index'];
    const upgradeDone = (r: { msg?: string }): boolean => r.msg?.startsWith('data directory upgraded') === true;
    let cutShort = 0;
    for (const step of steps) {
      const r = await startUntil(config, (rec) =>
        rec.step === step || (step === 'upgrading' && rec.msg?.startsWith('upgrading the data directory'))
          ? 'kill'
          : rec.event === 'ready'
            ? 'stop'
            : undefined,
      );
      // Every run before the last found the upgrade still to do: the kill interrupted it.
      expect(r.lines.some((l) => l.msg?.startsWith('upgrading the data directory'))).toBe(true);
      if (r.killed && !r.lines.some(upgradeDone)) cutShort++;
    }
    expect(cutShort).toBeGreaterThan(0); // at least one SIGKILL landed inside the upgrade
    const last = await startUntil(config, (rec) => (rec.event === 'ready' ? 'stop' : undefined));
    const done = last.lines.find(upgradeDone) as { framesLogged?: number } | undefined;
    // If the last kill came after the upgrade had committed, this start finds nothing to do.
    if (done) expect(done.framesLogged).toBeLessThanOrEqual(1);

    const rows = (await cli(['log', 'query', '--config', config]))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { device: string; boot: number; seq: number; heardBy: string });
    const ids = rows.map((r) => `${r.device}/${r.boot}/${r.seq}`);
    expect(ids.sort()).toEqual([...expected].sort()); // each once, none lost
    expect(rows.filter((r) => r.device === 'dev-c').every((r) => r.heardBy === fixture.sibling.id)).toBe(true);
    // --heard-by the sibling: dev-c, and its own copies of dev-a 100..119.
    const bySibling = (await cli(['log', 'query', '--config', config, '--heard-by', fixture.sibling.id]))
      .trim()
      .split('\n');
    expect(bySibling).toHaveLength(fixture.heardBySibling['dev-c']! + fixture.heardBySibling['dev-a']!);
    const local = (await cli(['log', 'query', '--config', config, '--local'])).trim().split('\n');
    expect(local).toHaveLength(expected.length - fixture.heardBySibling['dev-c']!);
    // The frame that had no block was logged in exactly one new block of this gateway's stream.
    const heads = JSON.parse(await cli(['log', 'heads', '--json', '--config', config])) as {
      author: string;
      heads: { author: string; stream: string; seq: number }[];
    };
    const own = heads.heads.find((h) => h.author === heads.author && h.stream === 'default')!;
    expect(own.seq).toBe(fixture.ownHeadSeq + 1);
    // `gateway status`: the site's devices, a sibling's with the gateway that heard it.
    const st = JSON.parse(await cli(['status', '--json', '--config', config])) as {
      framesHeld: number;
      siblings: { id: string; blocksHeld: number }[];
      deviceList: { id: string; enrolledHere: boolean; heardBy: string }[];
      storage: { maxBytes: number; usedBytes: number; historyDays: number | null };
    };
    expect(st.framesHeld).toBe(expected.length);
    // The storage budget read from the stopped gateway's directory: `auto` resolved, live bytes, history held.
    expect(st.storage.maxBytes).toBeGreaterThanOrEqual(4 * 2 ** 20);
    expect(st.storage.usedBytes).toBeGreaterThan(0);
    expect(st.storage.historyDays).toBeGreaterThan(0);
    expect(st.deviceList.find((d) => d.id === 'dev-c')).toMatchObject({
      enrolledHere: false,
      heardBy: fixture.sibling.id,
    });
    expect(st.siblings).toEqual([expect.objectContaining({ id: fixture.sibling.id, blocksHeld: 4 })]);
    const audit = await cli(['audit', 'verify', '--config', config]);
    expect(audit).toContain('ok: no faults');
  }, 180_000); // four gateway starts and five CLI runs: minutes on a loaded box

  it('a data directory of a newer release is refused by start and by the CLI, naming the format', async () => {
    const config = setUp(join(tmp.dir, 'newer'));
    const env = open({ path: join(tmp.dir, 'newer', 'data', 'outpost.lmdb'), maxDbs: 32, compression: false });
    await env.openDB<number, string>({ name: 'log-meta' }).put('schema', 99);
    await env.close();
    const start = await run(process.execPath, [gatewayBin, 'start', '--config', config, '--no-simulate']).catch(
      (e: { code: number; stderr: string }) => e,
    );
    expect((start as { code: number }).code).toBe(1);
    expect((start as { stderr: string }).stderr).toMatch(/written by a newer release \(data format 99/);
    const query = await run(process.execPath, [gatewayBin, 'log', 'query', '--config', config]).catch(
      (e: { code: number; stderr: string }) => e,
    );
    expect((query as { code: number }).code).toBe(1);
    expect((query as { stderr: string }).stderr).toMatch(/newer release/);
  });
});
