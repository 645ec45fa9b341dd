/**
 * Upgrading a data directory written by the release whose frames view was keyed by device-id
 * strings and hex block hashes (format 3, test/fixtures/data-v3, made by that release's code:
 * regenerate.sh) to format 4 (short numbers, binary keys). The real `gateway start` upgrades it
 * at start, a few frames per transaction (OUTPOST_UPGRADE_CHUNK), and is SIGKILLed at the
 * start of the upgrade, between two of its transactions and after the last one, then started
 * again: afterwards every frame is there once (own, the sibling's, the ones both hold), each
 * copy still found by `--heard-by`, nothing was logged anew, the format-3 tables are gone and
 * `audit verify` is clean.
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
const fixtureDir = new URL('../fixtures/data-v3/', import.meta.url).pathname;
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
type Line = { msg?: string; event?: string; step?: string; frames?: number };

function setUp(dir: string): { config: string; data: string } {
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
  return { config, data };
}

/** `gateway start` with 50 frames per upgrade transaction; `until(line)` says when to SIGKILL it (or stop it). */
function startUntil(config: string, until: (rec: Line) => 'kill' | 'stop' | undefined): Promise<{ lines: Line[] }> {
  const child: ChildProcess = spawn(process.execPath, [gatewayBin, 'start', '--config', config, '--no-simulate'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, OUTPOST_UPGRADE_CHUNK: '50' },
  });
  const lines: Line[] = [];
  let killed = false;
  createInterface({ input: child.stderr! }).on('line', () => {});
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const rec = JSON.parse(line) as Line;
    lines.push(rec);
    const what = until(rec);
    if (what === 'kill' && !killed) {
      killed = true;
      child.kill('SIGKILL');
    } else if (what === 'stop') child.kill('SIGTERM');
  });
  return new Promise((resolve) => child.once('exit', () => resolve({ lines })));
}

const cli = async (args: string[]): Promise<string> =>
  (await run(process.execPath, [gatewayBin, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 })).stdout;
const upgrading = (r: Line): boolean => r.msg?.startsWith('upgrading the data directory from format 3') === true;
const upgraded = (r: Line): boolean => r.msg?.startsWith('data directory upgraded to format 4') === true;

describe('data directory upgrade (format 3 → 4)', () => {
  const tmp = tempDir('outpost-upgrade-v3-');
  afterAll(() => tmp.cleanup());

  it('SIGKILL at the start, between two transactions and after the last, then a start that finishes it: every frame once, audit clean', async () => {
    const { config, data } = setUp(join(tmp.dir, 'kill'));
    const kills: ((r: Line) => boolean)[] = [
      upgrading,
      (r) => r.step === 'index' && r.msg?.includes('blocks numbered') === true, // a transaction of 50 frames landed
      (r) => r.step === 'index' && r.msg?.endsWith('frames indexed') === true, // the view is whole, the schema still 3
    ];
    for (const kill of kills) {
      const r = await startUntil(config, (rec) => (kill(rec) ? 'kill' : rec.event === 'ready' ? 'stop' : undefined));
      // Each run found the upgrade still to do, and was killed inside it.
      expect(r.lines.some(upgrading)).toBe(true);
      expect(r.lines.some(kill)).toBe(true);
      expect(r.lines.some(upgraded)).toBe(false);
    }
    const last = await startUntil(config, (rec) => (rec.event === 'ready' ? 'stop' : undefined));
    const done = last.lines.find(upgraded) as { framesIndexed?: number; framesLogged?: number } | undefined;
    expect(done).toMatchObject({ framesIndexed: expected.length, framesLogged: 0 });

    const rows = (await cli(['log', 'query', '--config', config]))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { device: string; boot: number; seq: number; heardBy: string });
    const ids = rows.map((r) => `${r.device}/${r.boot}/${r.seq}`);
    expect(ids.sort()).toEqual([...expected].sort()); // each once, none lost
    expect(rows.filter((r) => r.device === 'dev-c').every((r) => r.heardBy === fixture.sibling.id)).toBe(true);
    // Frames held in two copies: each copy still found.
    const bySibling = (await cli(['log', 'query', '--config', config, '--heard-by', fixture.sibling.id]))
      .trim()
      .split('\n');
    expect(bySibling).toHaveLength(fixture.heardBySibling['dev-c']! + fixture.heardBySibling['dev-a']!);
    const local = (await cli(['log', 'query', '--config', config, '--local'])).trim().split('\n');
    expect(local).toHaveLength(expected.length - fixture.heardBySibling['dev-c']!);
    // Nothing logged anew: the own stream's head is where the fixture left it.
    const heads = JSON.parse(await cli(['log', 'heads', '--json', '--config', config])) as {
      author: string;
      heads: { author: string; stream: string; seq: number }[];
    };
    expect(heads.heads.find((h) => h.author === heads.author && h.stream === 'default')!.seq).toBe(fixture.ownHeadSeq);
    expect(await cli(['audit', 'verify', '--config', config])).toContain('ok: no faults');

    // Format 4 on disk, the format-3 view tables gone.
    const env = open({ path: join(data, 'outpost.lmdb'), maxDbs: 64, compression: false, readOnly: true });
    try {
      expect(env.openDB<number, string>({ name: 'log-meta' }).get('schema')).toBe(4);
      const names = [...env.getKeys()].filter((k) => typeof k === 'string');
      for (const old of ['log-view', 'log-copies', 'log-by-time', 'log-by-device']) expect(names).not.toContain(old);
      expect(names).toEqual(expect.arrayContaining(['log-frame-view', 'log-frame-time', 'log-block-nos']));
    } finally {
      await env.close();
    }
  }, 180_000);
});
