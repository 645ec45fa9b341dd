/**
 * A rule's alert reaches a webhook once per firing, and a resolved message follows when the
 * condition clears. A real gateway (in-process) runs a condition rule whose `then` raises an
 * alert and whose `onClear` resolves it (rule alerts have a resolution: the decision carries
 * the rule's episode, start.ts `ruleAlert`); its `export` has an `http` notifier pointing at
 * a real node:http receiver in the test, with a bearer token from a file. Frames go through
 * the real ingest. The rule fires on every hot frame (`fire: every`), so the alert manager's
 * dedup, not the rule, is what makes it one message per firing. The receiver refuses the
 * first POST (503): that one is retried, not lost and not doubled.
 */
import { writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { signEd25519 } from '../../gateway/crypto/ed25519.js';
import type { Alert } from '../../gateway/export/sinks/types.js';
import { type ReadingBody, signBody } from '../../protocols/index.js';
import { testDevice } from '../helpers/devices.js';
import { startScopedGateway, testTempDir, waitFor } from '../helpers/env.js';

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

describe('alerts to a webhook', () => {
  it("a rule's alert reaches the webhook once per firing; resolved follows when it clears", async () => {
    const dir = testTempDir('outpost-alerts-webhook-');
    const received: Alert[] = [];
    let refused = 0;
    let unauthorised = 0;
    const server = createServer((req, res) => {
      void body(req).then((text) => {
        if (req.headers.authorization !== 'Bearer hook-secret') {
          unauthorised++;
          return res.writeHead(401).end();
        }
        if (refused === 0) {
          refused++;
          return res.writeHead(503).end();
        }
        received.push(JSON.parse(text) as Alert);
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    try {
      const rulesFile = join(dir, 'rules.yaml');
      writeFileSync(rulesFile, RULES);
      const tokenFile = join(dir, 'hook.token');
      writeFileSync(tokenFile, 'hook-secret\n');
      const a = testDevice('oven-a');
      const b = testDevice('oven-b');
      const { gw } = await startScopedGateway(
        [
          { id: a.id, publicKey: a.publicKeyHex },
          { id: b.id, publicKey: b.publicKeyHex },
        ],
        {
          rules: { files: [rulesFile] },
          export: { sinks: [{ type: 'http', name: 'hook', url: `http://127.0.0.1:${port}/alerts`, tokenFile }] },
          // No hold-back between a firing and its resolution: the test flips conditions within seconds.
          alerts: { notify: ['hook'], minIntervalSeconds: 0 },
        },
        join(dir, 'data'),
      );
      const seqs = new Map<string, number>();
      const send = async (d: typeof a, temp: number): Promise<void> => {
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
      const seen = (): string[] => received.map((m) => `${m.key} ${m.state} ${m.message}`);
      const until = async (n: number): Promise<void> =>
        waitFor(
          () => received.length >= n,
          10_000,
          () => `${n} webhook messages (got ${JSON.stringify(seen())})`,
        );
      // Two flushes (1 s each) with nothing new: anything extra would have been sent by then.
      const quiet = () => new Promise((r) => setTimeout(r, 2_500));

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
      expect(refused).toBe(1);
      expect(unauthorised).toBe(0);
      // Still firing: oven-b's alert, in the gateway's status.
      const status = gw.exports!.status().alerts as { firing: { key: string }[]; sent: number; failed: number };
      expect(status.firing.map((f) => f.key)).toEqual([k(b)]);
      expect(status).toMatchObject({ sent: 5, failed: 1 });
    } finally {
      await new Promise((r) => server.close(r));
    }
  }, 60_000);
});
