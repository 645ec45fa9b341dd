/**
 * Sync through a site broker with its own logins (sync.brokers entries with username,
 * passwordFile and tls.ca): a real Mosquitto with a TLS listener, a password_file and
 * allow_anonymous false. Two gateways with no direct link (each dials the other at the
 * broker's mqtts:// url and answers there), each hearing its own device on its embedded
 * broker: the frames each heard reach the other (GET /api/frames, the merged history). A
 * wrong password, no credentials and no CA for the broker's certificate are refused, with what
 * to check in /api/siblings and in the log; an anonymous client is refused by the broker.
 * The config rules (tls only on mqtts://, no password in clear beyond loopback) are checked too.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, validateConfig } from '../../gateway/config.js';
import { publicKeyFromSeed } from '../../gateway/crypto/ed25519.js';
import type { Gateway } from '../../gateway/gateway.js';
import { GatewayIdentity } from '../../gateway/identity.js';
import { toHex, topics } from '../../protocols/index.js';
import { testDevice } from '../helpers/devices.js';
import { running, startTestGateway, tempDir, waitFor } from '../helpers/env.js';
import { startTlsMosquitto, type TlsBroker } from '../helpers/mosquitto-tls.js';
import { skipUnless } from '../helpers/system-tools.js';

const devA = testDevice('dev-site-a');
const devB = testDevice('dev-site-b');
const devices = [devA, devB].map((d) => ({ id: d.id, publicKey: d.publicKeyHex }));
const USERS = { 'site-gw-a': 'pw-a-8f1c', 'site-gw-b': 'pw-b-27d0', 'site-gw-c': 'pw-c-b9e4' };

describe.skipIf(skipUnless('mosquitto', 'mosquitto-clients', 'openssl'))('sync through a site broker', () => {
  const tmp = tempDir('outpost-site-broker-');
  let broker: TlsBroker;
  const closers: (() => Promise<unknown>)[] = [];
  beforeAll(async () => {
    broker = await startTlsMosquitto(tmp.dir, { users: USERS });
  });
  afterAll(async () => {
    for (const c of closers.reverse()) await c().catch(() => {});
    await broker?.stop();
    tmp.cleanup();
  });

  /** A password file as an operator would write it (0600, trailing newline). */
  const secret = (name: string, password: string): string => {
    const f = join(tmp.dir, `${name}.pass`);
    writeFileSync(f, `${password}\n`, { mode: 0o600 });
    return f;
  };

  const dataDir = (id: string): { dir: string; hex: string } => {
    const dir = join(tmp.dir, id);
    return { dir, hex: toHex(GatewayIdentity.loadOrCreate(id, dir).publicKey) };
  };

  async function gateway(
    id: string,
    dir: string,
    peer: { id: string; hex: string },
    login: Record<string, unknown>,
  ): Promise<{ gw: Gateway; lines: Record<string, unknown>[]; api: (path: string) => Promise<any> }> {
    const { gw, lines } = await startTestGateway(dir, devices, {
      gateway: { id, dataDir: dir },
      api: { port: 0 },
      sync: {
        enabled: true,
        host: '127.0.0.1',
        port: 0,
        intervalSeconds: 3600,
        // No tcp:// address anywhere: the broker is the only way between them.
        peers: [{ id: peer.id, publicKey: peer.hex, url: broker.url }],
        brokers: [{ url: broker.url, ...login }],
      },
    });
    closers.push(() => gw.stop());
    const base = `http://127.0.0.1:${running(gw, 'api').port}`;
    const token = readFileSync(join(dir, 'api-token'), 'utf8').trim();
    const api = async (path: string): Promise<any> => {
      const r = await fetch(base + path, { headers: { authorization: `Bearer ${token}` } });
      expect(r.status, path).toBe(200);
      return r.json();
    };
    return { gw, lines, api };
  }

  /** A device sends `n` frames to the gateway that hears it (its embedded broker, loopback). */
  async function hear(gw: Gateway, dev: typeof devA, n: number): Promise<void> {
    const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${running(gw, 'broker').port}`, {
      clientId: dev.id,
      reconnectPeriod: 0,
    });
    for (let seq = 1; seq <= n; seq++)
      await c.publishAsync(topics.up(dev.id), Buffer.from(dev.frame(1, seq)), { qos: 1 });
    await c.endAsync();
    await waitFor(() => [...gw.blockLog.frameView(dev.id)].length === n, 10_000, `${dev.id}'s frames logged`);
  }

  it("two gateways with no direct link sync through the broker with their own logins; each sees the other's frames", async () => {
    // The broker takes no anonymous client: what follows goes through with the configured logins.
    await expect(mqtt.connectAsync(broker.url, { ca: broker.ca, reconnectPeriod: 0 })).rejects.toThrow(
      /Not authorized/,
    );
    const [da, db] = [dataDir('gw-a'), dataDir('gw-b')];
    const login = (user: keyof typeof USERS) => ({
      username: user,
      passwordFile: secret(user, USERS[user]),
      tls: { ca: broker.caFile },
    });
    const a = await gateway('gw-a', da.dir, { id: 'gw-b', hex: db.hex }, login('site-gw-a'));
    const b = await gateway('gw-b', db.dir, { id: 'gw-a', hex: da.hex }, login('site-gw-b'));
    await hear(a.gw, devA, 6);
    await hear(b.gw, devB, 4);

    await waitFor(
      async () => {
        await running(a.gw, 'siblings').round(false);
        await running(b.gw, 'siblings').round(false);
        // Frames still in a journal are in no head yet: equal heads mean converged only once
        // both journals are sealed (by the window's timer, or before an exchange).
        return (
          a.gw.blockLog.journaled === 0 &&
          b.gw.blockLog.journaled === 0 &&
          a.gw.blockLog.headsDigest() === b.gw.blockLog.headsDigest()
        );
      },
      20_000,
      'heads digests equal',
    );
    await Promise.all([a.gw.blockLog.durable(), b.gw.blockLog.durable()]);

    // The merged history on each side holds the frames the other heard, named as heard there.
    const onA = (await a.api('/api/frames?heardBy=gw-b')).frames as { device: string; seq: number; heardBy: string }[];
    const onB = (await b.api('/api/frames?heardBy=gw-a')).frames as { device: string; seq: number; heardBy: string }[];
    expect(onA.map((f) => [f.device, f.seq, f.heardBy])).toEqual([1, 2, 3, 4].map((s) => [devB.id, s, 'gw-b']));
    expect(onB.map((f) => [f.device, f.seq, f.heardBy])).toEqual([1, 2, 3, 4, 5, 6].map((s) => [devA.id, s, 'gw-a']));
    for (const side of [a, b]) {
      const [sib] = (await side.api('/api/siblings')).siblings as { transport: string; lastError: string | null }[];
      expect(sib).toMatchObject({ transport: 'mqtt', lastError: null });
    }
    // Each answered on the broker with its login: no refusal was logged.
    expect([...a.lines, ...b.lines].filter((l) => String(l.msg).startsWith('sync cannot answer'))).toEqual([]);
  });

  it('a wrong password, no credentials, and a broker certificate not from tls.ca are refused, saying what to check', async () => {
    const dc = dataDir('gw-c');
    const other = { id: 'gw-x', hex: toHex(publicKeyFromSeed(randomBytes(32))) };
    const cases = [
      {
        login: { username: 'site-gw-c', passwordFile: secret('wrong', 'not-the-password'), tls: { ca: broker.caFile } },
        error: `${broker.url} refused the login as "site-gw-c": Connection refused: Not authorized`,
      },
      {
        // No username: the gateway's sibling login, which a password_file broker does not know; not anonymous either.
        login: { tls: { ca: broker.caFile } },
        error: `${broker.url} refused the login as a sync sibling (no username for this broker in sync.brokers): Connection refused: Not authorized`,
      },
      {
        // The right login, but the broker's certificate is checked against the system CAs (no tls.ca): never sent.
        login: { username: 'site-gw-c', passwordFile: secret('right', USERS['site-gw-c']) },
        error: `${broker.url}: TLS failed: self-signed certificate in certificate chain`,
      },
    ];
    for (const { login, error } of cases) {
      const c = await gateway('gw-c', dc.dir, other, login);
      await running(c.gw, 'siblings').round(false);
      const [sib] = (await c.api('/api/siblings')).siblings as { id: string; lastError: string; connected: boolean }[];
      expect(sib).toMatchObject({ id: 'gw-x', connected: false });
      expect(sib!.lastError.startsWith(error), sib!.lastError).toBe(true);
      // The responder on the broker says it once, not once per retry (it retries every second).
      const tells = () =>
        c.lines.filter((l) => String(l.msg).startsWith(`sync cannot answer siblings on ${broker.url}`));
      await waitFor(() => tells().length > 0, 10_000, 'the responder to say it cannot answer');
      await new Promise((r) => setTimeout(r, 1500));
      const told = tells();
      expect(told.map((l) => String(l.err).slice(0, error.length))).toEqual([error]);
      await c.gw.stop();
    }
  });
});

describe('sync.brokers config', () => {
  const key = toHex(publicKeyFromSeed(randomBytes(32)));
  const cfg = (brokers: unknown[], peerUrl?: string) => () =>
    validateConfig({
      gateway: { id: 'gw-x', dataDir: '/tmp/x' },
      sync: { peers: [{ id: 'gw-b', publicKey: key, ...(peerUrl && { url: peerUrl }) }], brokers },
    });
  const issue = (brokers: unknown[]): string => {
    try {
      cfg(brokers)();
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      return (e as ConfigError).issues.join('\n');
    }
    throw new Error('accepted');
  };

  it('takes mqtts:// urls and a login, and says clearly what is wrong with one', () => {
    const site = {
      url: 'mqtts://broker.site:8883',
      username: 'gw-a',
      passwordFile: '/etc/p',
      tls: { ca: '/etc/ca.pem' },
    };
    expect(cfg(['mqtt://127.0.0.1:1883', site], 'mqtts://broker.site:8883')()).toMatchObject({
      sync: {
        peers: [{ url: 'mqtts://broker.site:8883' }],
        brokers: ['mqtt://127.0.0.1:1883', { ...site, insecure: false }],
      },
    });
    expect(issue([{ url: 'mqtt://broker.site:1883', username: 'gw-a', passwordFile: '/etc/p' }])).toBe(
      'sync.brokers.0.url: would send the broker password in clear beyond loopback: use mqtts:// (with tls: { ca: FILE } for a private CA) or insecure: true',
    );
    // Allowed when said so, and on loopback.
    expect(cfg([{ url: 'mqtt://broker.site:1883', username: 'gw-a', insecure: true }])).not.toThrow();
    expect(cfg([{ url: 'mqtt://localhost:1883', username: 'gw-a', passwordFile: '/etc/p' }])).not.toThrow();
    expect(issue([{ url: 'mqtt://127.0.0.1:1883', tls: { ca: '/etc/ca.pem' } }])).toBe(
      'sync.brokers.0.tls: is for mqtts:// URLs: this one is plain mqtt://',
    );
    expect(issue([{ url: 'mqtts://b:8883', passwordFile: '/etc/p' }])).toBe(
      'sync.brokers.0.passwordFile: needs a username (MQTT sends no password alone)',
    );
    expect(issue(['mqtts://b:8883', { url: 'mqtts://B:8883' }])).toBe('sync.brokers.1: mqtts://b:8883 is listed twice');
    expect(issue([{ url: 'mqtts://b:8883', password: 'x' }])).toMatch(
      /^sync.brokers.0: unknown key "password" \(allowed: url, username, passwordFile, tls, insecure\)$/,
    );
    expect(issue(['https://b:443'])).toMatch(/^sync.brokers.0: must be mqtt:\/\/host:port or mqtts:\/\/host:port/);
  });

  it('a password file that cannot be read stops the start, naming the key', async () => {
    const tmp = tempDir('outpost-site-broker-cfg-');
    try {
      await expect(
        startTestGateway(tmp.dir, [], {
          sync: {
            enabled: true,
            host: '127.0.0.1',
            port: 0,
            brokers: [{ url: 'mqtts://127.0.0.1:1', username: 'u', passwordFile: join(tmp.dir, 'missing') }],
          },
        }),
      ).rejects.toThrow(`sync.brokers.0.passwordFile: cannot read ${join(tmp.dir, 'missing')}: ENOENT`);
    } finally {
      tmp.cleanup();
    }
  });
});
