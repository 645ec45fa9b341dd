/** `gateway rules check` and `gateway rules test` as a user runs them: real processes, a real store. */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logFrames } from '../helpers/frames.js';
import { VirtualDevice } from '../../firmware-sim/device.js';
import { manifestSeed, readManifest } from '../../firmware-sim/manifest.js';
import type { Decision } from '../../rules/decision.js';
import { tempDir } from '../helpers/env.js';

const bin = new URL('../../bin/gateway.js', import.meta.url).pathname;
const FACTORY = 'rules/examples/factory-cell/rules.yaml';

async function gateway(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await promisify(execFile)(process.execPath, [bin, ...args]);
    return { code: 0, ...r };
  } catch (e) {
    return e as { code: number; stdout: string; stderr: string };
  }
}

describe('gateway rules CLI', () => {
  const tmp = tempDir('outpost-rules-cli-');
  const T0 = Date.UTC(2026, 10, 1, 8, 0, 0);
  beforeAll(async () => {
    // a recorded stretch: press-01 from the factory-cell manifest, 1 Hz for 60 s, forced to a
    // severe vibration at 30 s (firmware-sim frames, stored as ingest stores them)
    const e = readManifest('rules/examples/factory-cell/manifest.json').devices.find((d) => d.id === 'press-01')!;
    const d = new VirtualDevice({ id: e.id, seed: manifestSeed(e), model: e.model, powerOnMs: T0 });
    const frames = [];
    for (let s = 0; s < 60; s++) {
      if (s === 30) d.force('vib', 12);
      frames.push({ frame: d.nextFrame(T0 + s * 1000).bytes, rxTime: T0 + s * 1000 + 7, transport: 'mqtt' });
    }
    await logFrames(join(tmp.dir, 'data'), 'gw-rules-cli', frames);
  });
  afterAll(() => tmp.cleanup());

  it('rules check lists rules with their versions, and names file:line, rule and field on an error', async () => {
    const ok = await gateway(['rules', 'check', FACTORY]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^conveyor {2}machine {2}[0-9a-f]{12} {2}rules\/examples\/factory-cell\/rules\.yaml$/m);
    const bad = join(tmp.dir, 'bad.yaml');
    writeFileSync(
      bad,
      'rules:\n  - id: x\n    when: "v.a > 1"\n    then: [{ command: { device: d, actuator: a, value: 1, ttl: soon } }]\n',
    );
    const r = await gateway(['rules', 'check', bad]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${bad}:4:`);
    expect(r.stderr).toContain('rule "x", field "then[0].command.ttl": must be a duration');
    // config check validates the configured rule files too
    const cfg = join(tmp.dir, 'outpost.yaml');
    writeFileSync(cfg, `rules:\n  files: [${FACTORY}]\n`);
    const c = await gateway(['config', 'check', cfg]);
    expect(c.stdout).toContain('(2 rules in 1 rule file: ok)');
    writeFileSync(cfg, `rules:\n  files: [${FACTORY}, ${bad}]\n`);
    const cb = await gateway(['config', 'check', cfg]);
    expect(cb.code).toBe(1);
    expect(cb.stderr).toContain(`${bad}:4:`);
  });

  it('rules test replays the stored frames and prints what the rules would have done', async () => {
    const data = join(tmp.dir, 'data');
    const jsonl = await gateway(['rules', 'test', FACTORY, '--data', data, '--since', String(T0), '--jsonl']);
    expect(jsonl.stderr).toBe('');
    expect(jsonl.code).toBe(0);
    const ds = jsonl.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Decision);
    const speeds = ds
      .filter((d) => d.action.kind === 'command')
      .map((d) => [d.at - T0, d.action.kind === 'command' && d.action.command.value]);
    // running at start; stopped on the frame received at 30.007 s (no operator ack in the data)
    expect(speeds).toEqual([
      [0, 1],
      [30_007, 0],
    ]);
    const stop = ds.find((d) => d.action.kind === 'command' && d.action.command.value === 0)!;
    expect(stop.rule).toBe('conveyor');
    expect(stop.inputs.at(-1)).toEqual({ device: 'press-01', boot: 1, seq: 30 }); // the window's frames, ending with the crossing one
    const table = await gateway(['rules', 'test', FACTORY, '--data', data, '--since', String(T0)]);
    expect(table.stdout).toMatch(/^60 frames from .* replayed in \d+ ms: \d+ decisions$/m);
    expect(table.stdout).toContain('command conveyor-01.speed=0 (ttl 10000 ms)');
    const json = JSON.parse(
      (await gateway(['rules', 'test', FACTORY, '--data', data, '--since', String(T0), '--json'])).stdout,
    ) as { frames: number; rules: { id: string; frames: number }[] };
    expect(json.frames).toBe(60);
    expect(json.rules.find((r) => r.id === 'conveyor')!.frames).toBe(60);
    expect((await gateway(['rules', 'test', FACTORY, '--data', data, '--json', '--jsonl'])).code).toBe(2);
    expect((await gateway(['rules', 'test', FACTORY, '--data', join(tmp.dir, 'none')])).stderr).toMatch(/no store/);
  });

  it('rules test shows a settings action like the others, and reads it back with --against', async () => {
    const data = join(tmp.dir, 'data');
    const file = join(tmp.dir, 'watch.yaml');
    writeFileSync(
      file,
      'rules:\n  - id: watch-press\n    trigger: { names: [vib] }\n    when: "v.vib > 10.0"\n' +
        '    then:\n      - settings: { device: "{{device}}", values: { mode: watch, interval: 5 } }\n',
    );
    const table = await gateway(['rules', 'test', file, '--data', data, '--since', String(T0)]);
    expect(table.stderr).toBe('');
    expect(table.stdout).toMatch(/watch-press@[0-9a-f]+ +settings press-01 interval=5 mode="watch" +press-01\/1\/30 /);
    const jsonl = await gateway(['rules', 'test', file, '--data', data, '--since', String(T0), '--jsonl']);
    const ds = jsonl.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Decision);
    expect(ds.map((d) => [d.at - T0, d.action])).toEqual([
      [
        30_007,
        {
          kind: 'settings',
          device: 'press-01',
          values: [
            ['interval', 5],
            ['mode', 'watch'],
          ],
        },
      ],
    ]);
    const taken = join(tmp.dir, 'taken.jsonl');
    writeFileSync(taken, jsonl.stdout);
    const diff = await gateway(['rules', 'test', file, '--data', data, '--since', String(T0), '--against', taken]);
    expect(diff.stderr).toBe('');
    expect(diff.stdout).toContain(
      'diff against the decisions taken: 1 same, 0 taken but not in the dry run, 0 only in the dry run',
    );
  });
});
