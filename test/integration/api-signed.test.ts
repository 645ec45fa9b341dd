/**
 * The signed query API over real HTTP against an in-process gateway
 * fed over MQTT, with a policy file: requests signed by principals (RFC 9421,
 * ed25519, real keys), unsigned / wrongly signed / replayed / stale → 401, a
 * principal without read → 403 naming the policy and the missing permission and
 * seeing nothing, results filtered per policy, the live feed filtered the same
 * way, the operator token unchanged, and `gateway log query --remote --key`.
 */
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publicKeyToDidKey, toHex, topics } from '../../protocols/index.js';
import { signedGet } from '../../gateway/api/client.js';
import { signRequest } from '../../gateway/api/signed-request.js';
import { publicKeyFromSeed, signEd25519 } from '../../gateway/crypto/ed25519.js';
import { queueOp } from '../../gateway/policy/inbox.js';
import { policyOpSigningInput } from '../../protocols/policy-op.js';
import type { Gateway } from '../../gateway/gateway.js';
import { testDevice } from '../helpers/devices.js';
import { running, startTestGateway, tempDir, waitFor } from '../helpers/env.js';
import { collectSse } from '../helpers/sse.js';

const bin = new URL('../../bin/gateway.js', import.meta.url).pathname;
const press = testDevice('press-1');
const door = testDevice('door-1');
const key = (n: number): Uint8Array => new Uint8Array(32).fill(n);
const maint = key(1); // reader of vibration
const security = key(2); // reader of doors (confidential)
const outsider = key(3); // named in the file, reads nothing
const did = (seed: Uint8Array): string => publicKeyToDidKey(publicKeyFromSeed(seed));

const adminSeed = key(7);
const POLICY = `
admins: ["${did(adminSeed)}"]
principals:
  maint: { key: "${did(maint)}", kind: app }
  security: { key: "${did(security)}", kind: operator }
  outsider: { key: "${did(outsider)}", kind: app }
policies:
  default:
    relations: { reader: [maint, security] }
  vibration:
    relations: { reader: [maint] }
  doors:
    confidential: true
    relations: { reader: [security] }
tagging:
  - { device: "press-*", policy: vibration }
  - { device: "door-*", policy: doors }
`;

describe('signed query API', () => {
  const tmp = tempDir('outpost-signed-');
  let gw: Gateway;
  let base: string;
  let token: string;
  let client: mqtt.MqttClient;

  const frames = async (seed: Uint8Array, q = ''): Promise<{ status: number; body: any }> => {
    const r = await signedGet(base, `/api/frames${q}`, seed);
    return { status: r.status, body: await r.json() };
  };
  const publish = async (dev: typeof press, seq: number): Promise<void> => {
    await client.publishAsync(topics.up(dev.id), Buffer.from(dev.frame(1, seq)), { qos: 1 });
  };

  beforeAll(async () => {
    const policyFile = join(tmp.dir, 'policy.yaml');
    writeFileSync(policyFile, POLICY);
    ({ gw } = await startTestGateway(
      tmp.dir,
      [press, door].map((d) => ({ id: d.id, publicKey: d.publicKeyHex })),
      { api: { port: 0 }, policy: { file: policyFile } },
    ));
    base = `http://127.0.0.1:${running(gw, 'api').port}`;
    token = readFileSync(join(tmp.dir, 'api-token'), 'utf8').trim();
    client = await mqtt.connectAsync(`mqtt://127.0.0.1:${running(gw, 'broker').port}`, {
      clientId: 'fleet',
      reconnectPeriod: 0,
    });
    for (let seq = 1; seq <= 4; seq++) {
      await publish(press, seq);
      await publish(door, seq);
    }
    await waitFor(() => gw.frames.count() === 8, 10_000, '8 frames stored');
  });
  afterAll(async () => {
    await client?.endAsync();
    await gw?.stop();
    tmp.cleanup();
  });

  it('a principal sees only the frames of policies it may read, each with its policy', async () => {
    const m = await frames(maint);
    expect(m.status).toBe(200);
    expect(m.body.frames.map((f: any) => `${f.device}/${f.seq}/${f.policy}`)).toEqual([
      'press-1/1/vibration',
      'press-1/2/vibration',
      'press-1/3/vibration',
      'press-1/4/vibration',
    ]);
    const s = await frames(security);
    expect(s.body.frames.map((f: any) => `${f.device}/${f.seq}`)).toEqual([
      'door-1/1',
      'door-1/2',
      'door-1/3',
      'door-1/4',
    ]);
    expect(s.body.frames[0].records[0]).toMatchObject({ name: 'door-1:temp' }); // a reader gets the readings in clear
    // Paging through a filtered result skips what is not readable.
    const p1 = await frames(maint, '?limit=3');
    expect(p1.body).toMatchObject({ more: true });
    const p2 = await frames(maint, `?limit=3&after=${p1.body.next}`);
    expect([...p1.body.frames, ...p2.body.frames].map((f: any) => f.seq)).toEqual([1, 2, 3, 4]);
    expect(p2.body.more).toBe(false);
    // The confidential policy's blocks are sealed in the log.
    expect([...gw.blockLog.hashesOfKind('sealed')].length).toBeGreaterThan(0);
  });

  it('a principal without read gets 403 naming the policy and the missing permission, and sees nothing', async () => {
    const o = await frames(outsider);
    expect(o.status).toBe(403);
    expect(o.body.error).toMatchObject({
      code: 'forbidden',
      missing: 'reader',
      policy: expect.stringMatching(/^(vibration|doors)@1$/),
    });
    expect(o.body.frames).toBeUndefined();
    const asked = await frames(maint, '?policy=doors');
    expect(asked.status).toBe(403);
    expect(asked.body.error).toMatchObject({ code: 'forbidden', policy: 'doors@1', missing: 'reader' });
    expect(asked.body.error.message).toContain('doors@1');
    const dev = await frames(maint, '?device=door-1');
    expect(dev.status).toBe(403);
    expect(dev.body.error.policy).toBe('doors@1');
    // A key the policy file does not know at all: no read anywhere but on policies open to everyone.
    expect((await frames(key(9))).status).toBe(403);
  });

  it('unsigned, wrongly signed, tampered, replayed and stale requests get 401 and no data', async () => {
    const unsigned = await fetch(`${base}/api/frames`);
    expect(unsigned.status).toBe(401);
    expect(((await unsigned.json()) as any).error).toMatchObject({ code: 'unauthorized', reason: 'missing' });
    const h = signRequest('GET', '/api/frames?device=press-1', maint);
    // Signed for one query, sent with another.
    const tampered = await fetch(`${base}/api/frames?device=door-1`, { headers: { ...h } });
    expect(tampered.status).toBe(401);
    expect(((await tampered.json()) as any).error.reason).toBe('signature/invalid');
    // Claims security's key, signed by maint.
    const forged = { ...h, 'signature-input': h['signature-input'].replace(did(maint), did(security)) };
    const f = await fetch(`${base}/api/frames?device=press-1`, { headers: forged });
    expect(f.status).toBe(401);
    const ok = await fetch(`${base}/api/frames?device=press-1`, { headers: { ...h } });
    expect(ok.status).toBe(200);
    const replay = await fetch(`${base}/api/frames?device=press-1`, { headers: { ...h } });
    expect(replay.status).toBe(401);
    expect(((await replay.json()) as any).error.reason).toBe('signature/replayed');
    const old = signRequest('GET', '/api/frames', maint, { created: Math.floor(Date.now() / 1000) - 3600 });
    const stale = await fetch(`${base}/api/frames`, { headers: { ...old } });
    expect(stale.status).toBe(401);
    expect(((await stale.json()) as any).error.reason).toBe('signature/stale');
  });

  it('the operator surface stays on the admin token; a principal gets 403 there', async () => {
    for (const path of ['/api/status', '/api/devices', '/api/firmware', '/metrics']) {
      const r = await signedGet(base, path, maint);
      expect(r.status, path).toBe(403);
      expect(((await r.json()) as any).error.code).toBe('operator-only');
    }
    const all = await fetch(`${base}/api/frames`, { headers: { authorization: `Bearer ${token}` } });
    const body = (await all.json()) as any;
    expect(body.frames).toHaveLength(8);
    expect(new Set(body.frames.map((f: any) => f.policy))).toEqual(new Set(['vibration', 'doors']));
    const who = await signedGet(base, '/api/whoami', maint);
    expect(await who.json()).toEqual({
      caller: 'principal',
      principal: { did: did(maint), id: 'maint', kind: 'app' },
      readable: ['default', 'vibration'],
    });
  });

  it('the live feed sends a principal only the frames it may read, and no operator events', async () => {
    const ctl = new AbortController();
    const res = await signedGet(base, '/api/feed', maint, { signal: ctl.signal });
    expect(res.status).toBe(200);
    const { events, reading } = collectSse(res);
    await waitFor(() => running(gw, 'api').feed.size === 1, 5000, 'feed client');
    await publish(door, 5);
    await publish(press, 5);
    await client.publishAsync(topics.up('press-1'), Buffer.from(door.frame(1, 6)), { qos: 1 }); // rejected: wrong topic
    await waitFor(() => events.some((e) => e.event === 'frame'), 5000, 'frame event');
    await new Promise((r) => setTimeout(r, 300));
    expect(events.map((e) => `${e.event}:${e.data.device}/${e.data.seq}/${e.data.policy}`)).toEqual([
      'frame:press-1/5/vibration',
    ]);
    ctl.abort();
    await reading;
  });

  it('gateway log query --remote --key exports as the principal (jsonl and csv); a refusal exits 1 naming the policy', async () => {
    const keyFile = (seed: Uint8Array, name: string): string => {
      const f = join(tmp.dir, name);
      writeFileSync(f, toHex(seed) + '\n', { mode: 0o600 });
      return f;
    };
    const run = async (args: string[]) => {
      try {
        const { stdout, stderr } = await promisify(execFile)(process.execPath, [
          bin,
          'log',
          'query',
          '--remote',
          base,
          ...args,
        ]);
        return { code: 0, stdout, stderr };
      } catch (e) {
        const err = e as { code: number; stdout: string; stderr: string };
        return { code: err.code, stdout: err.stdout, stderr: err.stderr };
      }
    };
    const m = await run(['--key', keyFile(maint, 'maint.key'), '--device', 'press-1', '--limit', '3']);
    expect(m.code).toBe(0);
    const rows = m.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(rows.map((r) => `${r.device}/${r.seq}/${r.policy}`)).toEqual([
      'press-1/1/vibration',
      'press-1/2/vibration',
      'press-1/3/vibration',
    ]);
    const csv = await run(['--key', keyFile(security, 'security.key'), '--format', 'csv']);
    expect(csv.code).toBe(0);
    const lines = csv.stdout.trim().split('\n');
    expect(lines[0]).toBe('device,boot,seq,rx_time,heard_by,transport,policy,name,time,unit,value');
    expect(lines.slice(1).every((l) => l.split(',')[0] === 'door-1' && l.split(',')[6] === 'doors')).toBe(true);
    expect(lines.length).toBeGreaterThan(4);
    const refused = await run(['--key', keyFile(maint, 'maint2.key'), '--policy', 'doors']);
    expect(refused.code).toBe(1);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toMatch(/refused \(403 forbidden\).*\[policy doors@1, missing reader\]/);

    // The local export for a principal (--as) applies the same check to the store on disk.
    const config = join(tmp.dir, 'cli.yaml');
    writeFileSync(
      config,
      `gateway: { id: gw-test, dataDir: "${tmp.dir}" }\npolicy: { file: "${join(tmp.dir, 'policy.yaml')}" }\n`,
    );
    const local = async (args: string[]) => {
      try {
        const { stdout, stderr } = await promisify(execFile)(process.execPath, [
          bin,
          'log',
          'query',
          '--config',
          config,
          ...args,
        ]);
        return { code: 0, stdout, stderr };
      } catch (e) {
        const err = e as { code: number; stdout: string; stderr: string };
        return { code: err.code, stdout: err.stdout, stderr: err.stderr };
      }
    };
    const asMaint = await local(['--as', 'maint']);
    expect(asMaint.code).toBe(0);
    const mine = asMaint.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(mine.length).toBeGreaterThanOrEqual(4);
    expect(mine.every((r) => r.device === 'press-1' && r.policy === 'vibration')).toBe(true);
    const asOutsider = await local(['--as', did(outsider)]);
    expect(asOutsider.code).toBe(1);
    expect(asOutsider.stdout).toBe('');
    expect(asOutsider.stderr).toMatch(/refused: .* may not read policy (vibration|doors)@1: missing reader/);
    const operator = await local([]);
    expect(operator.stdout.trim().split('\n').length).toBeGreaterThanOrEqual(8); // the operator's own export is whole
  }, 90_000);

  it("after an admin revokes its read, the principal's open feed stops and its queries get 403", async () => {
    const ctl = new AbortController();
    const res = await signedGet(base, '/api/feed', maint, { signal: ctl.signal });
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = '';
    const reading = (async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        text += value;
      }
    })().catch(() => {});
    await waitFor(() => running(gw, 'api').feed.size === 1, 5000, 'feed client');
    await publish(press, 10);
    await waitFor(() => text.includes('"seq":10'), 5000, 'frame 10 on the feed');
    const claim = {
      op: 'revoke' as const,
      principal: did(maint),
      relation: 'reader',
      policy: 'vibration',
      issuedAt: Date.now(),
      admin: publicKeyFromSeed(adminSeed),
    };
    queueOp(tmp.dir, { ...claim, signature: signEd25519(adminSeed, policyOpSigningInput(claim)), after: [] });
    await gw.policies.inbox.drain();
    await waitFor(
      () => !gw.policies.permissions.check(did(maint), 'read', 'vibration').allowed,
      5000,
      'revocation in force',
    );
    await publish(press, 11);
    await waitFor(async () => (await gw.frames.count()) >= 12, 5000, 'frame 11 stored');
    await new Promise((r) => setTimeout(r, 300));
    expect(text).not.toContain('"seq":11');
    const after = await frames(maint, '?device=press-1');
    expect(after.status).toBe(403);
    expect(after.body.error).toMatchObject({ policy: 'vibration@1', missing: 'reader' });
    ctl.abort();
    await reading;
  });
});
