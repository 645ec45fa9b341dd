/**
 * Logs: JSON lines when stdout is not a terminal, one readable line per event with the
 * same fields on a terminal (a real pty from util-linux `script`), and --log-format /
 * log.format to force either.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { prettyLine } from '../../gateway/log-pretty.js';
import { tempDir } from '../helpers/env.js';

const root = new URL('../../', import.meta.url).pathname;
// biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI colour codes start with ESC
const ANSI = /\x1b\[[0-9;]*m/g;

describe('pretty log lines', () => {
  it('one line: time, level, message, then every field as key=value (errors as type: message)', () => {
    const rec = {
      level: 40,
      time: '2026-12-05T09:11:36.064Z',
      svc: 'outpost-gateway',
      device: 'press-01',
      reason: 'bad-signature',
      detail: 'signature does not verify',
      counts: { a: 1 },
      err: { type: 'Error', message: 'boom', stack: 'Error: boom\n    at x' },
      msg: 'frame rejected',
    };
    expect(prettyLine(JSON.stringify(rec), false)).toBe(
      '09:11:36.064 WARN  frame rejected device=press-01 reason=bad-signature detail="signature does not verify" counts={"a":1} err="Error: boom"',
    );
    const coloured = prettyLine(JSON.stringify(rec), true);
    expect(coloured).toContain('\x1b[33mWARN \x1b[0m');
    expect(coloured.replace(ANSI, '')).toBe(prettyLine(JSON.stringify(rec), false));
    expect(prettyLine('not json', true)).toBe('not json');
  });
});

describe('gateway start log format', () => {
  const tmp = tempDir('outpost-logfmt-');
  const children: ChildProcess[] = [];
  afterAll(() => {
    for (const c of children)
      try {
        process.kill(-c.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    tmp.cleanup();
  });

  /** Runs `gateway start` (through `script` for a terminal) until it says ready; returns its output. */
  async function startOutput(name: string, flags: string[], tty: boolean, format?: string): Promise<string> {
    const cfg = join(tmp.dir, `${name}.yaml`);
    writeFileSync(
      cfg,
      `gateway: { id: gw-${name}, dataDir: ${JSON.stringify(join(tmp.dir, name))} }\nmqtt: { port: 0 }\napi: { enabled: false }\n` +
        (format ? `log: { format: ${format} }\n` : ''),
    );
    const args = ['bin/gateway.js', 'start', '--config', cfg, '--no-simulate', ...flags];
    const child = tty
      ? spawn('script', ['-qfec', [process.execPath, ...args].join(' '), '/dev/null'], { cwd: root, detached: true })
      : spawn(process.execPath, args, { cwd: root, detached: true });
    children.push(child);
    let out = '';
    await new Promise<void>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`exited ${code}: ${out}`))); // before ready
      child.stdout!.on('data', (b: Buffer) => {
        out += b.toString();
        if (/gateway ready/.test(out)) resolve();
      });
    });
    const exited = new Promise((r) => child.once('exit', r));
    process.kill(-child.pid!, 'SIGTERM');
    await exited;
    return out.replace(/\r/g, '');
  }

  const lines = (out: string) => out.split('\n').filter((l) => /\S/.test(l) && !l.startsWith('outpost: '));

  it('on a terminal: readable coloured lines with the same fields; piped: JSON lines', async () => {
    const tty = lines(await startOutput('tty', [], true));
    expect(tty[0]).toContain('\x1b[32mINFO \x1b[0m');
    const plain = tty.map((l) => l.replace(ANSI, ''));
    expect(plain[0]).toMatch(
      /^\d\d:\d\d:\d\d\.\d{3} INFO {2}gateway gw-tty starting gateway=gw-tty did=did:key:z6Mk\S+ /,
    );
    expect(plain.some((l) => /INFO {2}gateway ready event=ready mqttPort=\d+/.test(l))).toBe(true);
    for (const l of plain) expect(l.startsWith('{')).toBe(false);

    const piped = lines(await startOutput('pipe', [], false));
    const first = JSON.parse(piped[0]!) as Record<string, unknown>;
    expect(first).toMatchObject({ level: 30, gateway: 'gw-pipe', msg: 'gateway gw-pipe starting' });
    for (const l of piped) expect(() => JSON.parse(l)).not.toThrow();
  }, 90_000);

  it('--log-format pretty through a pipe, log.format json on a terminal', async () => {
    const pretty = lines(await startOutput('forced-pretty', ['--log-format', 'pretty'], false));
    expect(pretty[0]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO {2}gateway gw-forced-pretty starting /);
    expect(pretty[0]).not.toMatch(ANSI); // not a terminal: no colour
    const json = lines(await startOutput('forced-json', [], true, 'json'));
    expect(JSON.parse(json[0]!)).toMatchObject({ gateway: 'gw-forced-json' });
  }, 90_000);
});
