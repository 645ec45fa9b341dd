/**
 * The embedded broker on listeners beyond loopback (0.0.0.0, reached here through
 * 127.0.0.1): a plain one and a TLS one with the gateway's self-signed certificate.
 * Real gateway (aedes over TCP, lmdb), real mosquitto_pub / mosquitto_sub processes.
 * Anonymous clients are refused, devices prove their key at CONNECT with a connect
 * token and stay within their own topics, principals receive only frames of policies
 * they may read, and nobody takes over a device's client id.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../../gateway/gateway.js';
import { publicKeyFromSeed } from '../../gateway/crypto/ed25519.js';
import { publicKeyToDidKey, topics } from '../../protocols/index.js';
import { testDevice } from '../helpers/devices.js';
import { startTestGateway, tempDir, waitFor } from '../helpers/env.js';
import { runMosquitto, tokenFor } from '../helpers/mosquitto-clients.js';
import { skipUnless } from '../helpers/system-tools.js';

const GW = 'gw-test';

describe.skipIf(skipUnless('mosquitto-clients'))('MQTT authentication beyond loopback', () => {
  let tmp: ReturnType<typeof tempDir>;
  let gw: Gateway;
  let plain: number;
  let tlsPort: number;
  let ca: string;
  const a = testDevice('dev-a');
  const b = testDevice('dev-b');
  const gone = testDevice('dev-gone');
  const dash = testDevice('dash'); // a principal's key
  const nosy = testDevice('nosy'); // a principal with no read permission

  beforeAll(async () => {
    tmp = tempDir();
    const policyFile = join(tmp.dir, 'policies.yaml');
    writeFileSync(
      policyFile,
      [
        'principals:',
        `  dash: { key: "${publicKeyToDidKey(publicKeyFromSeed(dash.seed))}", kind: app }`,
        `  nosy: { key: "${publicKeyToDidKey(publicKeyFromSeed(nosy.seed))}", kind: app }`,
        'policies:',
        '  open: { relations: { holder: ["*"], reader: [dash] } }',
        '  secret: { relations: { holder: ["*"] } }',
        'tagging:',
        '  - { policy: open, device: dev-a }',
        'default: secret',
        '',
      ].join('\n'),
    );
    ({ gw } = await startTestGateway(
      join(tmp.dir, 'data'),
      [a, b, gone].map((d) => ({ id: d.id, publicKey: d.publicKeyHex })),
      {
        mqtt: { host: '0.0.0.0', port: 0, tls: { enabled: true, host: '0.0.0.0', port: 0 } },
        policy: { file: policyFile },
      },
    ));
    await gw.registry.revoke('dev-gone');
    plain = gw.broker!.port;
    tlsPort = gw.broker!.portOf(1);
    ca = gw.tls!.certFile;
  });
  afterAll(async () => {
    await gw?.stop();
    tmp?.cleanup();
  });

  const pubArgs = (id: string, user: string, password: string, topic: string): string[] => [
    ...['-h', '127.0.0.1', '-p', String(tlsPort), '--cafile', ca, '-q', '1'],
    ...['-i', id, '-u', user, '-P', password, '-t', topic, '-s'],
  ];
  const stored = (device: string) => [...gw.frames.query({ device })].length;

  it('refuses an anonymous subscriber to # on both listeners', async () => {
    for (const extra of [
      ['-p', String(plain)],
      ['-p', String(tlsPort), '--cafile', ca],
    ]) {
      const r = await runMosquitto('mosquitto_sub', ['-h', '127.0.0.1', ...extra, '-t', '#', '-C', '1', '-W', '5']);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/not authori[sz]ed/i);
    }
  });

  it('stores a frame published over TLS with a valid device token; refuses wrong, expired, replayed and revoked', async () => {
    const frame = a.frame(1, 1);
    const token = tokenFor('dev-a', a.seed, GW);
    const ok = await runMosquitto('mosquitto_pub', pubArgs('dev-a', 'dev-a', token, topics.up('dev-a')), {
      input: frame,
    });
    expect(ok.code).toBe(0);
    await waitFor(() => stored('dev-a') === 1, 5000, 'frame stored');

    const refused = async (user: string, password: string, frameBytes: Uint8Array) => {
      const r = await runMosquitto('mosquitto_pub', pubArgs(user, user, password, topics.up(user)), {
        input: frameBytes,
      });
      expect(r.code).not.toBe(0);
      return r.stderr;
    };
    // signed by another key
    expect(await refused('dev-a', tokenFor('dev-a', b.seed, GW), a.frame(1, 2))).toMatch(/bad user name or password/i);
    // ten minutes old (window: 5 min)
    expect(await refused('dev-a', tokenFor('dev-a', a.seed, GW, Date.now() - 600_000), a.frame(1, 3))).toMatch(
      /bad user name or password/i,
    );
    // for another gateway
    expect(await refused('dev-a', tokenFor('dev-a', a.seed, 'gw-other'), a.frame(1, 4))).toMatch(
      /bad user name or password/i,
    );
    // the token that was accepted above, replayed
    expect(await refused('dev-a', token, a.frame(1, 5))).toMatch(/bad user name or password/i);
    // revoked and never-enrolled devices
    expect(await refused('dev-gone', tokenFor('dev-gone', gone.seed, GW), gone.frame(1, 1))).toMatch(
      /not authori[sz]ed/i,
    );
    const stranger = testDevice('dev-x');
    expect(await refused('dev-x', tokenFor('dev-x', stranger.seed, GW), stranger.frame(1, 1))).toMatch(
      /not authori[sz]ed/i,
    );
    expect(stored('dev-a')).toBe(1);
    expect(stored('dev-gone') + stored('dev-x')).toBe(0);
  });

  const deviceClient = (d: typeof a) =>
    mqtt.connectAsync(`mqtt://127.0.0.1:${plain}`, {
      clientId: d.id,
      username: d.id,
      password: tokenFor(d.id, d.seed, GW),
      reconnectPeriod: 0,
    });

  it("keeps a device to its own topics: no subscription to another's cmd, no publish to another's up", async () => {
    const ca_ = await deviceClient(a);
    // SUBACK 0x80 (refused) for another device's cmd and for '#'; mqtt.js rejects those
    const granted: number[] = [];
    ca_.on('packetreceive', (p) => p.cmd === 'suback' && granted.push(...(p.granted as number[])));
    await expect(ca_.subscribeAsync(topics.cmd('dev-b'), { qos: 1 })).rejects.toThrow();
    await expect(ca_.subscribeAsync('#', { qos: 1 })).rejects.toThrow();
    await ca_.subscribeAsync(topics.cmd('dev-a'), { qos: 1 });
    // Firmware downlinks: its own, never another device's.
    await expect(ca_.subscribeAsync(topics.fwDown('dev-b'), { qos: 1 })).rejects.toThrow();
    await ca_.subscribeAsync(topics.fwDown('dev-a'), { qos: 1 });
    expect(granted).toEqual([128, 128, 1, 128, 1]);
    const before = stored('dev-b');
    const beforeA = stored('dev-a');
    // b's genuine frame, relayed by a on b's topic: dropped at the broker, never ingested
    await ca_.publishAsync(topics.up('dev-b'), Buffer.from(b.frame(1, 1)), { qos: 1 });
    await ca_.publishAsync(topics.up('dev-a'), Buffer.from(a.frame(1, 10)), { qos: 1 });
    await waitFor(() => stored('dev-a') === beforeA + 1, 5000, "a's own frame");
    expect(stored('dev-b')).toBe(before);
    expect(ca_.connected).toBe(true);
    await ca_.endAsync();
  });

  it('refuses a client id takeover and the device stays connected', async () => {
    const cb = await deviceClient(b);
    let closed = false;
    cb.on('close', () => (closed = true));
    // anonymous, as another device, and as a principal: all refused with "identifier rejected" or not authorised
    const attempts = [
      ['-i', 'dev-b'],
      ['-i', 'dev-b', '-u', 'dev-a', '-P', tokenFor('dev-a', a.seed, GW)],
      ['-i', 'dev-b', '-u', 'dash', '-P', tokenFor('dash', dash.seed, GW)],
    ];
    for (const who of attempts) {
      const r = await runMosquitto('mosquitto_pub', [
        '-h',
        '127.0.0.1',
        '-p',
        String(plain),
        ...who,
        '-t',
        'x',
        '-m',
        'x',
      ]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/identifier rejected|not authori[sz]ed/i);
    }
    await cb.publishAsync(topics.up('dev-b'), Buffer.from(b.frame(1, 2)), { qos: 1 });
    expect(closed).toBe(false);
    expect(cb.connected).toBe(true);
    await cb.endAsync();
  });

  it('gives a principal only frames of policies it may read', async () => {
    const sub = (user: string, seed: Uint8Array) =>
      runMosquitto(
        'mosquitto_sub',
        [
          ...['-h', '127.0.0.1', '-p', String(tlsPort), '--cafile', ca, '-q', '1', '-i', `${user}-sub`],
          ...['-u', user, '-P', tokenFor(user, seed, GW), '-t', 'outpost/v1/dev/+/up', '-F', '%t', '-W', '8'],
        ],
        { timeoutMs: 15_000 },
      );
    // The publishes below wait for both subscriptions to be in place (a SUBSCRIBE follows the
    // CONNACK; on a loaded box a fixed pause could be too short, and a frame would go unseen).
    const subscribed = new Set<string>();
    const onSubscribe = (_subs: unknown, client: { id: string }) => subscribed.add(client.id);
    gw.broker!.aedes.on('subscribe', onSubscribe);
    const dashRun = sub('dash', dash.seed);
    const nosyRun = sub('nosy', nosy.seed);
    await waitFor(() => subscribed.has('dash-sub') && subscribed.has('nosy-sub'), 10_000, 'subscribers subscribed');
    gw.broker!.aedes.off('subscribe', onSubscribe);
    const ca_ = await deviceClient(a);
    const cb = await deviceClient(b);
    for (let seq = 20; seq < 23; seq++) {
      await ca_.publishAsync(topics.up('dev-a'), Buffer.from(a.frame(1, seq)), { qos: 1 });
      await cb.publishAsync(topics.up('dev-b'), Buffer.from(b.frame(1, seq)), { qos: 1 });
    }
    await Promise.all([ca_.endAsync(), cb.endAsync()]);
    const [d, n] = await Promise.all([dashRun, nosyRun]);
    const seen = (r: { stdout: Buffer }) => r.stdout.toString().trim().split('\n').filter(Boolean);
    // dash reads policy "open" (dev-a) but not "secret" (dev-b); nosy reads neither
    expect(seen(d)).toEqual([topics.up('dev-a'), topics.up('dev-a'), topics.up('dev-a')]);
    expect(seen(n)).toEqual([]);
  });
});
