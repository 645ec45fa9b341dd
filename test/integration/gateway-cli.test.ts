/** The `gateway` CLI as a user runs it: real processes, a real store. */
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { type AddressInfo, createServer } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publicKeyToDidKey, toHex } from '../../protocols/index.js';
import { validateConfig } from '../../gateway/config.js';
import { Gateway } from '../../gateway/gateway.js';
import { testDevice } from '../helpers/devices.js';
import { memoryLogger, tempDir } from '../helpers/env.js';

const bin = new URL('../../bin/gateway.js', import.meta.url).pathname;

async function gateway(args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const p = promisify(execFile)(process.execPath, [bin, ...args]);
  if (input !== undefined) {
    p.child.stdin!.end(input);
  }
  try {
    const { stdout, stderr } = await p;
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

describe('gateway CLI', () => {
  const tmp = tempDir();
  const data = join(tmp.dir, 'data');
  const dev = testDevice('press-01');
  const frames = [dev.frame(1, 1, 20.5), dev.frame(1, 2, 21.5)];

  beforeAll(async () => {
    // Store two frames through a real gateway so `log query` has something to read.
    const { log } = memoryLogger();
    const gw = await Gateway.start(
      validateConfig({
        gateway: { dataDir: data },
        mqtt: { enabled: false },
        api: { enabled: false },
        devices: [{ id: dev.id, publicKey: dev.publicKeyHex, site: 'plant-a' }],
      }),
      { logger: log, simulate: false },
    );
    for (const f of frames) expect((await gw.ingest.submit(f, { transport: 'test' })).status).toBe('stored');
    await gw.stop();
  });
  afterAll(() => tmp.cleanup());

  it('enrols by did:key, lists and revokes', async () => {
    const other = testDevice('door-7');
    const did = publicKeyToDidKey(Buffer.from(other.publicKeyHex, 'hex'));
    const e = await gateway(['devices', 'enroll', '--data', data, '--id', 'door-7', '--key', did, '--model', 'door-1']);
    expect(e).toMatchObject({ code: 0 });
    expect(e.stdout).toContain(did);
    const list = await gateway(['devices', 'list', '--data', data, '--json']);
    const rows = list.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { id: string; did: string; revokedAt?: number });
    expect(rows.map((r) => r.id).sort()).toEqual(['door-7', 'press-01']);
    expect((await gateway(['devices', 'revoke', '--data', data, 'door-7'])).code).toBe(0);
    const after = await gateway(['devices', 'list', '--data', data]);
    expect(after.stdout).toMatch(/door-7\s+revoked/);
  });

  it('refuses small-order and malformed keys with the reason (RFC 8032 §5.1.3)', async () => {
    const identity = '01' + '00'.repeat(31); // the neutral point: order 1
    const r = await gateway(['devices', 'enroll', '--data', data, '--id', 'evil', '--key', identity]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('key/small-order');
    const bad = await gateway(['devices', 'enroll', '--data', data, '--id', 'evil', '--key', 'zz']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('key/bad-hex');
    expect((await gateway(['devices', 'enroll', '--data', data, '--id', 'evil'])).code).toBe(2);
  });

  it('decodes a frame and checks its signature against --key or the registry', async () => {
    const hex = toHex(frames[0]!);
    const viaRegistry = await gateway(['frame', 'decode', '--data', data, hex]);
    expect(viaRegistry.code).toBe(0);
    const out = JSON.parse(viaRegistry.stdout) as {
      device: string;
      body: { boot: number; seq: number };
      signature: { valid: boolean; keySource: string };
    };
    expect(out).toMatchObject({ device: 'press-01', body: { boot: 1, seq: 1 }, signature: { valid: true } });
    const wrongKey = await gateway(['frame', 'decode', '--key', testDevice('x').publicKeyHex, hex]);
    expect(wrongKey.code).toBe(1);
    expect(JSON.parse(wrongKey.stdout)).toMatchObject({ signature: { checked: true, valid: false } });
    const stdin = await gateway(['frame', 'decode', '--key', dev.publicKeyHex, '-'], hex + '\n');
    expect(JSON.parse(stdin.stdout)).toMatchObject({ signature: { valid: true } });
    const junk = await gateway(['frame', 'decode', 'd28443a1']);
    expect(junk.code).toBe(1);
    expect(JSON.parse(junk.stdout)).toMatchObject({ ok: false, error: { code: 'cbor/truncated' } });
  });

  it('queries the log as JSON lines and CSV', async () => {
    const jsonl = await gateway(['log', 'query', '--data', data, '--device', 'press-01', '--since', '1h', '--raw']);
    const rows = jsonl.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { seq: number; records: { value: number }[]; frame: string });
    expect(rows.map((r) => r.seq)).toEqual([1, 2]);
    expect(rows.map((r) => r.records[0]!.value)).toEqual([20.5, 21.5]);
    expect(rows[0]!.frame).toBe(toHex(frames[0]!));
    const csv = await gateway(['log', 'query', '--data', data, '--format', 'csv']);
    expect(csv.stdout.trim().split('\n')).toEqual([
      'device,boot,seq,rx_time,heard_by,transport,policy,name,time,unit,value',
      expect.stringMatching(/^press-01,1,1,[^,]+,gw-[^,]+,test,default,press-01:temp,[\d.]+,Cel,20\.5$/),
      expect.stringMatching(/^press-01,1,2,[^,]+,gw-[^,]+,test,default,press-01:temp,[\d.]+,Cel,21\.5$/),
    ]);
    const future = await gateway([
      'log',
      'query',
      '--data',
      data,
      '--since',
      new Date(Date.now() + 3_600_000).toISOString(),
    ]);
    expect(future.stdout).toBe('');
    const badTime = await gateway(['log', 'query', '--data', data, '--since', 'yesterday-ish']);
    expect(badTime.code).toBe(2);
    expect(badTime.stderr).toContain('--since');
  });

  it('fails to start with a clear message, not a stack, on a busy port or a bad enrolment', async () => {
    const server = createServer().listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as AddressInfo).port;
    const busy = await gateway(['start', '--no-simulate', '--data', join(tmp.dir, 'busy'), '--port', String(port)]);
    server.close();
    expect(busy.code).toBe(1);
    expect(busy.stderr).toContain(`cannot listen on 127.0.0.1:${port} (EADDRINUSE)`);
    const file = join(tmp.dir, 'small-order.yaml');
    writeFileSync(file, `devices:\n  - { id: x1, publicKey: "${'00'.repeat(32)}" }\n`);
    const bad = await gateway(['start', '--config', file, '--data', join(tmp.dir, 'bad')]);
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim()).toBe('gateway: device x1: public key is a point of small order (key/small-order)');
  });

  it('checks a config file and names the bad key and the allowed values', async () => {
    const file = join(tmp.dir, 'bad.yaml');
    writeFileSync(file, 'mqtt:\n  port: 99999\nlog:\n  level: loud\nfoo: 1\n');
    const r = await gateway(['config', 'check', file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('mqtt.port');
    expect(r.stderr).toContain(
      'log.level: must be one of "fatal", "error", "warn", "info", "debug", "trace", "silent"',
    );
    expect(r.stderr).toContain('unknown key "foo"');
    writeFileSync(file, 'mqtt: [unclosed\n');
    expect((await gateway(['config', 'check', file])).stderr).toContain('not valid YAML');
    const good = join(tmp.dir, 'good.yaml');
    writeFileSync(good, `gateway: { id: gw-a }\ndevices:\n  - { id: ${dev.id}, publicKey: "${dev.publicKeyHex}" }\n`);
    expect(await gateway(['config', 'check', good])).toMatchObject({ code: 0 });
  });
});
