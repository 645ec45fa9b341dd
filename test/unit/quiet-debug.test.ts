import '../../gateway/transports/quiet-debug.js';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';

// The `debug` that aedes's mqtt-packet resolves, as quiet-debug.ts finds it.
const fromAedes = createRequire(createRequire(import.meta.url).resolve('aedes'));
const fromPacket = createRequire(fromAedes.resolve('mqtt-packet'));
type Logger = ((...a: unknown[]) => void) & { enabled: boolean; log: (...a: unknown[]) => void };
const debug = fromPacket('debug') as ((ns: string) => Logger) & {
  enable(ns: string): void;
  disable(): string;
  quiet?: true;
};

describe('quiet-debug', () => {
  it('hands out a plain no-op (no rest parameter) for a namespace DEBUG does not enable', () => {
    expect(debug.quiet).toBe(true);
    const d = debug('outpost-test:off');
    expect(d.enabled).toBe(false);
    expect(d.toString()).not.toContain('...');
    const lines: unknown[] = [];
    d.log = (...a) => lines.push(a);
    d('nothing %d', 1);
    expect(lines).toEqual([]);
  });

  it('hands out the real logger for a namespace enabled when it is made', () => {
    debug.enable('outpost-test:on');
    try {
      const d = debug('outpost-test:on');
      const lines: string[] = [];
      d.log = (...a) => lines.push(a.join(' '));
      d('hello %d', 42);
      expect(lines.join('\n')).toMatch(/outpost-test:on hello .*42/);
    } finally {
      debug.disable();
    }
  });

  it("keeps mqtt-packet's own logging when DEBUG names it (a child process parses a packet)", () => {
    const script = `
      await import(${JSON.stringify(new URL('../../gateway/transports/quiet-debug.ts', import.meta.url).href)});
      const { createRequire } = await import('node:module');
      const fromAedes = createRequire(createRequire(${JSON.stringify(import.meta.url)}).resolve('aedes'));
      const mqttPacket = fromAedes('mqtt-packet');
      const parser = mqttPacket.parser();
      parser.on('packet', (p) => process.stdout.write(p.cmd));
      parser.parse(Buffer.from([0xc0, 0x00]));`;
    const run = (env: NodeJS.ProcessEnv) =>
      spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
        env: { ...process.env, ...env },
        encoding: 'utf8',
      });
    const quiet = run({ DEBUG: '' });
    expect(quiet.stdout).toBe('pingreq');
    expect(quiet.stderr).not.toContain('mqtt-packet:parser');
    const loud = run({ DEBUG: 'mqtt-packet:parser' });
    expect(loud.stdout).toBe('pingreq');
    expect(loud.stderr).toContain('mqtt-packet:parser');
  });
});
