/**
 * Alert state survives a gateway restart (`<dataDir>/alerts.json`): a real gateway (in-process)
 * runs a condition rule whose `then` raises an alert and whose `onClear` resolves it, with an
 * `http` notifier pointing at a real node:http receiver. The alert fires and is delivered; the
 * gateway stops and starts again on the same data directory; the condition still holding is
 * not sent again, and when it clears the resolution of the alert raised before the restart is
 * sent, once. A state file that is not JSON is logged and ignored, not fatal.
 */
import { writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { signEd25519 } from '../../gateway/crypto/ed25519.js';
import type { Alert } from '../../gateway/export/sinks/types.js';
import type { Gateway } from '../../gateway/gateway.js';
import { type ReadingBody, signBody } from '../../protocols/index.js';
import { testDevice } from '../helpers/devices.js';
import { startTestGateway, testTempDir, waitFor } from '../helpers/env.js';

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

// Two flushes (1 s each) with nothing new: anything extra would have been sent by then.
const quiet = () => new Promise((r) => setTimeout(r, 2_500));

describe('alert state across a restart', () => {
  it('a firing alert is not sent again after a restart, and its resolution still follows once', async () => {
    const dir = testTempDir('outpost-alerts-restart-');
    const received: Alert[] = [];
    const server = createServer((req, res) => {
      void body(req).then((text) => {
        const a = JSON.parse(text) as Alert;
        if (a.key.startsWith('rule/')) received.push(a); // disk conditions follow the suite's shared disk
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    onTestFinished(() => new Promise<void>((r) => server.close(() => r())));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/alerts`;
    const rulesFile = join(dir, 'rules.yaml');
    writeFileSync(rulesFile, RULES);
    const dev = testDevice('oven-r');
    const dataDir = join(dir, 'data');
    const start = async (): Promise<Gateway> => {
      const { gw } = await startTestGateway(dataDir, [{ id: dev.id, publicKey: dev.publicKeyHex }], {
        rules: { files: [rulesFile] },
        export: { sinks: [{ type: 'http', name: 'hook', url }], rollups: { enabled: false } },
        alerts: { notify: ['hook'], minIntervalSeconds: 0, diskLowBytes: 0 },
      });
      return gw;
    };
    let seq = 0;
    const send = async (gw: Gateway, temp: number): Promise<void> => {
      const reading: ReadingBody = {
        type: 'reading',
        boot: 1,
        seq: seq++,
        time: Date.now(),
        records: [{ bn: `${dev.id}:`, n: 'temp', u: 'Cel', v: temp }],
      };
      const frame = signBody(reading, dev.id, (m) => signEd25519(dev.seed, m));
      expect((await gw.ingest.submit(frame, { transport: 'test', claimedDevice: dev.id })).status).toBe('stored');
    };
    const seen = () => received.map((a) => `${a.state} ${a.message}`);

    let gw = await start();
    await send(gw, 55);
    await waitFor(() => received.length === 1, 10_000, 'the firing');
    await gw.stop();

    gw = await start();
    onTestFinished(() => gw.stop());
    await send(gw, 58); // still hot: whatever the rule engine decides, the alert is already out
    await quiet();
    expect(seen()).toEqual([`firing ${dev.id} hot 55`]);
    expect(gw.exports!.status().alerts).toMatchObject({ firing: [{ key: `rule/hot/${dev.id}` }] });
    await send(gw, 40); // clears: the resolution of the alert raised before the restart
    await waitFor(
      () => received.length === 2,
      10_000,
      () => `the resolution (got ${JSON.stringify(seen())})`,
    );
    await quiet();
    expect(seen()).toEqual([`firing ${dev.id} hot 55`, `resolved ${dev.id} cool 40`]);
    await gw.stop();

    // A torn or foreign state file is not the gateway's end: logged, and it starts afresh.
    writeFileSync(join(dataDir, 'alerts.json'), '{"v":1,"active":');
    const { gw: again, lines } = await startTestGateway(dataDir, [{ id: dev.id, publicKey: dev.publicKeyHex }], {
      export: { sinks: [{ type: 'http', name: 'hook', url }], rollups: { enabled: false } },
      alerts: { notify: ['hook'], diskLowBytes: 0 },
    });
    gw = again;
    expect(lines.some((l) => String(l.msg).includes('alert state not restored'))).toBe(true);
  }, 60_000);
});
