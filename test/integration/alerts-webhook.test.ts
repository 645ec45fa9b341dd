/**
 * A rule's alert reaches a webhook once per firing, and a resolved message follows when the
 * condition clears. A real gateway (in-process) runs a condition rule whose `then` raises an
 * alert and whose `onClear` resolves it (rule alerts have a resolution: the decision carries
 * the rule's episode, start.ts `ruleAlert`); its `export` has an `http` notifier pointing at
 * a real node:http receiver in the test, with a bearer token from a file. Frames go through
 * the real ingest. The rule fires on every hot frame (`fire: every`), so the alert manager's
 * dedup, not the rule, is what makes it one message per firing. The receiver refuses the
 * first POST (503): that one is retried, not lost and not doubled. A rule with no alert in
 * its onClear has nothing to resolve its alert: each firing still reaches the webhook.
 *
 * A health condition the same way: a device heard over MQTT and then silent longer than
 * alerts.deviceOfflineSeconds raises `device-offline` once, and its next frame resolves it;
 * an MQTT data sink whose broker is down raises `sink-lagging`, resolved once it caught up.
 */
import { writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { signEd25519 } from '../../gateway/crypto/ed25519.js';
import type { Alert } from '../../gateway/export/sinks/types.js';
import mqtt from 'mqtt';
import { type ReadingBody, signBody, topics } from '../../protocols/index.js';
import type { Gateway } from '../../gateway/gateway.js';
import { type TestDevice, testDevice } from '../helpers/devices.js';
import { freePort, running, startScopedGateway, testTempDir, waitFor } from '../helpers/env.js';
import { startBroker } from './firmware-sim.broker.js';

const RULES = `
rules:
  - id: hot
    trigger: { names: [temp] }
    per: device
    when: 'v.temp > 50.0'
    clear: 'v.temp < 45.0'
    fire: every
    then: [{ alert: "{{device}} hot {{v.temp}}" }]
    onClear: [{ alert: "{{device}} cool {{v.temp}}" }]
`;

const body = async (req: IncomingMessage): Promise<string> => {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString();
};

const DISK_ALERT = /^health\/(storage-budget|disk-low)/;

/** A webhook receiver on loopback: checks the bearer token, refuses the first `refuseFirst` POSTs (503). */
async function webhook(refuseFirst: number) {
  const received: Alert[] = [];
  const counts = { refused: 0, unauthorised: 0 };
  const server = createServer((req, res) => {
    void body(req).then((text) => {
      if (req.headers.authorization !== 'Bearer hook-secret') {
        counts.unauthorised++;
        return res.writeHead(401).end();
      }
      if (counts.refused < refuseFirst) {
        counts.refused++;
        return res.writeHead(503).end();
      }
      const alert = JSON.parse(text) as Alert;
      // Disk conditions follow the shared disk a whole test suite writes to, not these tests.
      if (!DISK_ALERT.test(alert.key)) received.push(alert);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  onTestFinished(() => new Promise<void>((r) => server.close(() => r())));
  const seen = (): string[] => received.map((m) => `${m.key} ${m.state} ${m.message}`);
  return {
    received,
    counts,
    seen,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/alerts`,
    /** Waits until `n` alerts were accepted. */
    until: (n: number): Promise<void> =>
      waitFor(
        () => received.length >= n,
        10_000,
        () => `${n} webhook messages (got ${JSON.stringify(seen())})`,
      ),
  };
}

/** The notifier config: the receiver, a token file, no hold-back (conditions flip within seconds), no disk-low check. */
function hookConfig(dir: string, url: string, alerts: Record<string, unknown> = {}, sinks: unknown[] = []) {
  const tokenFile = join(dir, 'hook.token');
  writeFileSync(tokenFile, 'hook-secret\n');
  return {
    export: { sinks: [{ type: 'http', name: 'hook', url, tokenFile }, ...sinks] },
    alerts: { notify: ['hook'], minIntervalSeconds: 0, diskLowBytes: 0, ...alerts },
  };
}

/** Submits readings of `temp` from a device through the gateway's ingest, seq counting up per device. */
function sender(gw: Gateway) {
  const seqs = new Map<string, number>();
  return async (d: TestDevice, temp: number): Promise<void> => {
    const seq = seqs.get(d.id) ?? 0;
    seqs.set(d.id, seq + 1);
    const reading: ReadingBody = {
      type: 'reading',
      boot: 1,
      seq,
      time: Date.now(),
      records: [{ bn: `${d.id}:`, n: 'temp', u: 'Cel', v: temp }],
    };
    const frame = signBody(reading, d.id, (m) => signEd25519(d.seed, m));
    expect((await gw.ingest.submit(frame, { transport: 'test', claimedDevice: d.id })).status).toBe('stored');
  };
}

// Two flushes (1 s each) with nothing new: anything extra would have been sent by then.
const quiet = () => new Promise((r) => setTimeout(r, 2_500));

describe('alerts to a webhook', () => {
  it("a rule's alert reaches the webhook once per firing; resolved follows when it clears", async () => {
    const dir = testTempDir('outpost-alerts-webhook-');
    const hook = await webhook(1);
    const rulesFile = join(dir, 'rules.yaml');
    writeFileSync(rulesFile, RULES);
    const a = testDevice('oven-a');
    const b = testDevice('oven-b');
    const { gw } = await startScopedGateway(
      [
        { id: a.id, publicKey: a.publicKeyHex },
        { id: b.id, publicKey: b.publicKeyHex },
      ],
      {
        rules: { files: [rulesFile] },
        ...hookConfig(dir, hook.url),
      },
      join(dir, 'data'),
    );
    const send = sender(gw);
    const { seen, until, received } = hook;

    await send(a, 30);
    await send(a, 55); // fires
    await send(a, 56); // still firing: the rule decides again, the webhook hears nothing new
    await send(a, 57);
    await until(1); // the first POST was refused and retried at the next flush
    await send(a, 48); // between clear and when: still firing (hysteresis)
    await send(a, 40); // clears
    await until(2);
    await send(a, 60); // fires again: a new firing
    await send(a, 61);
    await send(b, 70); // another device: its own alert
    await until(4);
    await send(a, 20); // clears again
    await until(5);
    await quiet();

    const k = (d: typeof a): string => `rule/hot/${d.id}`;
    expect(seen().filter((s) => s.startsWith(k(a)))).toEqual([
      `${k(a)} firing oven-a hot 55`,
      `${k(a)} resolved oven-a cool 40`,
      `${k(a)} firing oven-a hot 60`,
      `${k(a)} resolved oven-a cool 20`,
    ]);
    expect(seen().filter((s) => s.startsWith(k(b)))).toEqual([`${k(b)} firing oven-b hot 70`]);
    expect(received).toHaveLength(5);
    for (const m of received) expect(m).toMatchObject({ kind: 'rule', gateway: 'gw-test', detail: { rule: 'hot' } });
    expect(hook.counts).toEqual({ refused: 1, unauthorised: 0 });
    // Still firing: oven-b's alert, in the gateway's status.
    const status = gw.exports!.status().alerts as { firing: { key: string }[]; sent: number; failed: number };
    expect(status.firing.map((f) => f.key)).toEqual([k(b)]);
    expect(status).toMatchObject({ sent: 5, failed: 1 });
  }, 60_000);

  it('a rule alert with nothing to resolve it (no onClear alert) reaches the webhook at each firing', async () => {
    const dir = testTempDir('outpost-alerts-oneshot-');
    const hook = await webhook(0);
    const rulesFile = join(dir, 'rules.yaml');
    writeFileSync(
      rulesFile,
      `rules:
  - id: warm
    trigger: { names: [temp] }
    per: device
    when: 'v.temp > 50.0'
    then: [{ alert: "{{device}} warm {{v.temp}}" }]
`,
    );
    const a = testDevice('oven-a');
    const { gw } = await startScopedGateway(
      [{ id: a.id, publicKey: a.publicKeyHex }],
      { rules: { files: [rulesFile] }, ...hookConfig(dir, hook.url) },
      join(dir, 'data'),
    );
    const send = sender(gw);
    await send(a, 55); // fires
    await send(a, 56);
    await hook.until(1);
    await send(a, 30); // off: no decision, nothing to resolve
    await send(a, 60); // fires again: a new firing
    await hook.until(2);
    await quiet();
    expect(hook.seen()).toEqual([
      `rule/warm/${a.id} firing ${a.id} warm 55`,
      `rule/warm/${a.id} firing ${a.id} warm 60`,
    ]);
  }, 60_000);

  it('a health condition (device offline) is raised once and resolved when the device is heard again', async () => {
    const dir = testTempDir('outpost-alerts-health-');
    const hook = await webhook(0);
    const dev = testDevice('probe-1');
    const { gw } = await startScopedGateway(
      [{ id: dev.id, publicKey: dev.publicKeyHex }],
      hookConfig(dir, hook.url, { deviceOfflineSeconds: 2, checkSeconds: 1 }),
      join(dir, 'data'),
    );
    // Activity (what device-offline reads) is the transports' view: the device talks MQTT.
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${running(gw, 'broker').port}`, {
      clientId: dev.id,
      reconnectPeriod: 0,
    });
    onTestFinished(() => client.endAsync());
    const key = `health/device-offline/${dev.id}`;
    await client.publishAsync(topics.up(dev.id), Buffer.from(dev.frame(1, 0)), { qos: 1 });
    await hook.until(1); // silent for over two seconds: offline
    expect(hook.received[0]).toMatchObject({
      key,
      kind: 'device-offline',
      state: 'firing',
      detail: { device: dev.id },
    });
    await quiet(); // still silent: nothing more
    expect(hook.received).toHaveLength(1);
    // Back, and talking (a frame every 250 ms) until the end, so it is not offline again.
    let seq = 1;
    const talk = setInterval(
      () => void client.publishAsync(topics.up(dev.id), Buffer.from(dev.frame(1, seq++)), { qos: 1 }).catch(() => {}),
      250,
    );
    onTestFinished(() => clearInterval(talk));
    await hook.until(2);
    await quiet();
    clearInterval(talk);
    expect(hook.seen()).toEqual([
      `${key} firing ${hook.received[0]!.message}`,
      `${key} resolved resolved: ${hook.received[0]!.message}`,
    ]);
    expect(hook.counts).toEqual({ refused: 0, unauthorised: 0 });
  }, 60_000);

  it('sink-lagging is raised while a data sink is down and resolved once it caught up; steady ingest after raises nothing', async () => {
    const dir = testTempDir('outpost-alerts-lagging-');
    const hook = await webhook(0);
    const port = await freePort(); // the cloud broker's, down for now
    const dev = testDevice('meter-9');
    const { gw } = await startScopedGateway(
      [{ id: dev.id, publicKey: dev.publicKeyHex }],
      hookConfig(dir, hook.url, { checkSeconds: 1 }, [
        { type: 'mqtt', name: 'cloud', url: `mqtt://127.0.0.1:${port}`, lagAlertSeconds: 1 },
      ]),
      join(dir, 'data'),
    );
    const send = sender(gw);
    const key = 'health/sink-lagging/cloud';
    await send(dev, 20);
    await hook.until(1); // behind for over a second
    expect(hook.received[0]).toMatchObject({ key, kind: 'sink-lagging', state: 'firing', detail: { sink: 'cloud' } });
    const broker = await startBroker({}, port);
    onTestFinished(() => broker.close());
    await hook.until(2); // the exporter's next attempt delivers; the next check resolves
    expect(gw.exports!.status().sinks[0]).toMatchObject({ sink: 'cloud', lagBlocks: 0, lagSeconds: 0 });
    // Steady ingest to a sink that keeps up: its lag stays below a second, no new alert.
    for (let i = 0; i < 30; i++) {
      await send(dev, 21 + i);
      await new Promise((r) => setTimeout(r, 100));
    }
    await quiet();
    expect(hook.seen()).toEqual([
      `${key} firing ${hook.received[0]!.message}`,
      `${key} resolved resolved: ${hook.received[0]!.message}`,
    ]);
  }, 60_000);
});
