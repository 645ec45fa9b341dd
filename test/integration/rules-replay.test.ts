/**
 * Replay: "the dry run of a recorded day gives the same decisions as the live run did".
 * A real gateway runs the rules live (asyncScheduler, wall clock) over frames submitted to
 * its real ingest at a paced rate; its actuation records every decision in the log. Then
 * `gateway rules test --diff` (a separate process) replays the stored frames on a virtual
 * clock and compares with those records. The "day" is compressed: every timer is an odd
 * multiple of 100·S ms against a 200·S ms frame period, so live ingest latency under 100·S ms
 * cannot reorder a frame and a timer (live rules run on processing time, a replay on receive time).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../gateway/config.js';
import { signEd25519 } from '../../gateway/crypto/ed25519.js';
import { Gateway } from '../../gateway/gateway.js';
import { ruleVersionsInLog } from '../../gateway/rule-versions.js';
import { type ReadingBody, type SenmlRecord, signBody } from '../../protocols/index.js';
import type { Decision } from '../../rules/decision.js';
import { testDevice } from '../helpers/devices.js';
import { memoryLogger, running, tempDir } from '../helpers/env.js';

const bin = new URL('../../bin/gateway.js', import.meta.url).pathname;
/** Time scale: margins between frames and timers are 100·S ms, room for live ingest latency on a busy machine. */
const S = 3;
const SLOT = 200 * S;
const ms = (n: number): string => `${n * S}ms`;

const RULES = `
rules:
  - id: vib-slow
    trigger: { devices: [press-1], names: [vib] }
    window: { sliding: ${ms(900)} }
    aggregate: { avg: avg(vib) }
    when: 'agg.avg > 4.0'
    clear: 'agg.avg < 3.0'
    for: ${ms(300)}
    then: [{ command: { device: conv-1, actuator: speed, value: 0.5, ttl: 5s } }]
    onClear: [{ command: { device: conv-1, actuator: speed, value: 1.0, ttl: 5s } }]
  - id: temp-alert
    trigger: { devices: [press-1], names: [temp] }
    when: 'v.temp > 50.0'
    debounce: ${ms(300)}
    then: [{ alert: "hot {{v.temp}}" }]
    onClear: [{ alert: "cool {{v.temp}}" }]
  - id: temp-repeat
    trigger: { devices: [press-1], names: [temp] }
    when: 'v.temp > 50.0'
    fire: every
    cooldown: ${ms(700)}
    rateLimit: { max: 2, per: ${ms(1900)} }
    then: [{ alert: "again {{v.temp}}" }]
  - id: press-silent
    trigger: { devices: [press-1] }
    # devices: [] watches a device once heard: a dry run cannot know when the live engine started
    watchdog: { silence: ${ms(900)}, devices: [], then: [{ alert: "press silent" }], onResume: [{ alert: "press back" }] }
  - id: cell
    trigger: { devices: [press-1, key-1] }
    machine:
      window: { count: 3 }
      aggregate: { mx: max(vib) }
      initial: run
      latches: { ack: { set: 'device == "key-1" && has(v.door) && v.door', clearOnEnter: [stop] } }
      states:
        run: { onEnter: [{ command: { device: conv-1, actuator: run, value: true, ttl: 5s } }] }
        stop:
          minDwell: ${ms(500)}
          onEnter:
            - command: { device: conv-1, actuator: run, value: false, ttl: 5s }
            - publish: { topic: cell/state, payload: "stopped at {{agg.mx}}" }
        restart: { onEnter: [{ alert: "restarting" }] }
      transitions:
        - { from: run, to: stop, when: 'has(agg.mx) && agg.mx > 8.0' }
        - { from: stop, to: restart, when: 'latch.ack' }
        - { from: restart, to: run, after: ${ms(300)} }
`;

/** The scripted "day": what press-1 and key-1 report in each 200 ms slot (undefined: silent). */
function script(k: number): { press?: { vib: number; temp: number }; key: boolean } {
  const vib = k >= 5 && k <= 12 ? 6 : k === 22 ? 9 : 2;
  const temp = k >= 8 && k <= 18 ? 55 : 30;
  return { ...(k < 28 || k > 33 ? { press: { vib, temp } } : {}), key: k === 25 };
}
const SLOTS = 39;

describe('rules: dry run equals live run', () => {
  const tmp = tempDir('outpost-rules-replay-');
  afterAll(() => tmp.cleanup());

  it('the dry run of a recorded period gives the same decisions as the live run did', async () => {
    const press = testDevice('press-1');
    const key = testDevice('key-1');
    const warm = testDevice('warm-1'); // in no rule's trigger
    const rulesFile = join(tmp.dir, 'rules.yaml');
    writeFileSync(rulesFile, RULES);
    const dataDir = join(tmp.dir, 'data');
    const { log } = memoryLogger();
    const since = Date.now(); // the live engine starts during Gateway.start, a little after this
    const gw = await Gateway.start(
      validateConfig({
        gateway: { id: 'gw-replay', dataDir },
        mqtt: { enabled: false },
        api: { enabled: false },
        simulate: { devices: 0 },
        devices: [
          { id: press.id, publicKey: press.publicKeyHex, model: 'press-vib-1', site: 'plant-a' },
          { id: key.id, publicKey: key.publicKeyHex, model: 'door-1', site: 'plant-a' },
          { id: warm.id, publicKey: warm.publicKeyHex },
        ],
        rules: { files: [rulesFile] },
      }),
      { logger: log, simulate: false },
    );
    const seqs = { [press.id]: 0, [key.id]: 0 };
    const send = async (d: typeof press, records: SenmlRecord[]): Promise<void> => {
      const body: ReadingBody = {
        type: 'reading',
        boot: 1,
        seq: seqs[d.id]!++,
        time: Date.now(),
        records: [{ bn: `${d.id}:`, ...records[0] }, ...records.slice(1)],
      };
      const o = await gw.ingest.submit(
        signBody(body, d.id, (m) => signEd25519(d.seed, m)),
        { transport: 'test', claimedDevice: d.id },
      );
      expect(o.status).toBe('stored');
    };
    // warm up ingest (verify workers start lazily; the first frames can take a second) so the
    // live engine sees the script at its real pace, as it would on a gateway that has been up
    for (let i = 0; i < 20; i++)
      expect((await gw.ingest.submit(warm.frame(1, i), { transport: 'test', claimedDevice: warm.id })).status).toBe(
        'stored',
      );
    const t0 = Date.now() + 50;
    for (let k = 0; k < SLOTS; k++) {
      const wait = t0 + k * SLOT - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const s = script(k);
      // One after the other, a few ms apart: two frames received in the same millisecond have no
      // order a replay can recover (the live engine may take them either way), and the machine's
      // count window names its input frames in order.
      if (s.press)
        await send(press, [
          { n: 'vib', u: 'm/s2', v: s.press.vib },
          { n: 'temp', u: 'Cel', v: s.press.temp },
        ]);
      await new Promise((r) => setTimeout(r, 5));
      await send(key, [{ n: 'door', vb: s.key }]);
    }
    await new Promise((r) => setTimeout(r, 1500 * S)); // every timer due after the last frame has fired
    const until = Date.now();
    const live = running(gw, 'rules').stats();
    // the rule versions the live engine ran are in the log, with their definitions
    const versions = new Map([...ruleVersionsInLog(gw.blockLog)].map((v) => [v.id, v]));
    await gw.stop(); // writes the last audit records

    const run = async (args: string[]): Promise<{ code: number; stdout: string; stderr: string }> => {
      try {
        const r = await promisify(execFile)(process.execPath, [
          bin,
          'rules',
          'test',
          rulesFile,
          '--data',
          dataDir,
          '--since',
          String(since),
          '--until',
          String(until),
          '--tolerance',
          String(1000 * S),
          ...args,
        ]);
        return { code: 0, ...r };
      } catch (e) {
        return e as { code: number; stdout: string; stderr: string };
      }
    };
    const r = await run(['--diff', '--json']);
    expect(r.stderr).toBe('');
    const report = JSON.parse(r.stdout) as {
      frames: number;
      decisions: Decision[];
      diff: { same: boolean; matched: number; missing: Decision[]; extra: Decision[] };
    };
    expect(report.diff.missing).toEqual([]);
    expect(report.diff.extra).toEqual([]);
    expect(report.diff.same).toBe(true);
    expect(r.code).toBe(0);
    expect(report.frames).toBe(20 + SLOTS * 2 - 6);
    // every rule and every operator path decided something, the same number of times live
    const byRule = (id: string): string[] =>
      report.decisions
        .filter((d) => d.rule === id)
        .map((d) =>
          d.action.kind === 'command'
            ? `${d.action.command.actuator}=${String(d.action.command.value)}`
            : d.action.kind === 'alert'
              ? d.action.message
              : d.action.kind === 'publish'
                ? d.action.payload
                : d.action.device,
        );
    expect(byRule('vib-slow')).toEqual(['speed=0.5', 'speed=1']);
    expect(byRule('temp-alert')).toEqual(['hot 55', 'cool 30']);
    expect(byRule('temp-repeat')).toEqual(['again 55', 'again 55']); // cooldown, then the rate limit
    expect(byRule('press-silent')).toEqual(['press silent', 'press back', 'press silent']); // the last: after the final frame
    expect(byRule('cell')).toEqual(['run=true', 'run=false', 'stopped at 9', 'restarting', 'run=true']);
    expect(report.diff.matched).toBe(report.decisions.length);
    for (const s of live) expect(s.errors, s.id).toBe(0);
    for (const d of report.decisions) {
      const v = versions.get(d.rule);
      expect(v?.version, d.rule).toBe(d.ruleVersion);
      expect(createHash('sha256').update(v!.definition).digest('hex').slice(0, 12)).toBe(d.ruleVersion);
    }

    // and the same run is told apart from a changed rule: --against a JSONL with one decision dropped
    const jsonl = await run(['--jsonl']);
    const lines = jsonl.stdout.trim().split('\n');
    writeFileSync(join(tmp.dir, 'taken.jsonl'), lines.slice(1).join('\n'));
    const against = await run(['--against', join(tmp.dir, 'taken.jsonl')]);
    expect(against.code).toBe(1);
    expect(against.stdout).toMatch(/\d+ same, 0 taken but not in the dry run, 1 only in the dry run/);
  }, 60_000);
});
