/**
 * Fuzz campaign over the gateway's MQTT ingest path: random and mutated publishes (frames,
 * topics, QoS) to a real embedded aedes broker of an in-process gateway. The gateway must
 * not crash or wedge (a fresh good frame is still PUBACKed and stored after every batch),
 * and only frames that verify under the device's enrolled key are ever stored (README:
 * "bad frames are final, not fatal").
 */
import fc from 'fast-check';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signEd25519, verifyEd25519 } from '../../gateway/crypto/ed25519.js';
import type { Gateway } from '../../gateway/gateway.js';
import { decodeSign1, sigStructure, signBody, topics } from '../../protocols/index.js';
import { startTestGateway, tempDir } from '../helpers/env.js';
import { dec, devicePublicKey, deviceSeed, enc, frames } from './corpus.js';
import { budget, fuzzInput, fuzzTimeout } from './mutate.js';

let gw: Gateway;
let url: string;
let tmp: ReturnType<typeof tempDir>;

beforeAll(async () => {
  tmp = tempDir('outpost-fuzz-mqtt-');
  ({ gw, url } = await startTestGateway(tmp.dir, [
    { id: 'fz-1', publicKey: Buffer.from(devicePublicKey).toString('hex') },
  ]));
});
afterAll(async () => {
  await gw.stop();
  tmp.cleanup();
});

const topicTexts = [
  topics.up('fz-1'),
  topics.up('fz-2'),
  topics.cmd('fz-1'),
  topics.gatewayStatus('gw-test'),
  'outpost/v1/sync/00/11/i',
  'outpost/v1/dev/fz-1/up/extra',
];
const publishArb = fc.record({
  topic: fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...topicTexts) },
    { weight: 2, arbitrary: fuzzInput(topicTexts.map(enc), 64).map(dec) },
  ),
  payload: fuzzInput(frames, 2048),
  qos: fc.constantFrom(0 as const, 1 as const),
});

let seq = 1000;
const freshFrame = (): Uint8Array =>
  signBody(
    { type: 'reading', boot: 9, seq: seq++, time: Date.now(), records: [{ n: 'temp', u: 'Cel', v: 20 }] },
    'fz-1',
    (m) => signEd25519(deviceSeed, m),
  );

/** Rejects (naming the step) when `p` has not settled after `ms`: a wedged gateway fails the property instead of the test timing out. */
async function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>(
    (_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms)),
  );
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

describe('fuzz: MQTT ingest on a real embedded broker', () => {
  it(
    'random publishes never crash or wedge the gateway, and nothing unsigned is stored',
    async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(publishArb, { minLength: 1, maxLength: 8 }), async (pubs) => {
          const c = await within(
            5000,
            'connect',
            mqtt.connectAsync(url, { clientId: `fz-${seq}`, reconnectPeriod: 0 }),
          );
          c.on('error', () => undefined);
          // A publish aedes refuses (a '#' in the topic) closes the connection and mqtt.js then leaves
          // QoS 1 promises pending; an empty topic at QoS 1 is never even answered by mqtt.js. So the
          // batch ends when all settled, at the close, or after 2 s; the probe below is the wedge check.
          const closed = new Promise<void>((r) => c.once('close', () => r()));
          const settled = Promise.all(
            pubs.map((p) => c.publishAsync(p.topic, Buffer.from(p.payload), { qos: p.qos }).catch(() => undefined)),
          );
          await Promise.race([settled, closed, new Promise((r) => setTimeout(r, 2000))]);
          c.end(true);
          // The gateway still answers: a good frame is PUBACKed (durable) on a new connection.
          const probe = await within(
            5000,
            'probe connect',
            mqtt.connectAsync(url, { clientId: `fz-probe-${seq}`, reconnectPeriod: 0 }),
          );
          await within(
            5000,
            'probe PUBACK',
            probe.publishAsync(topics.up('fz-1'), Buffer.from(freshFrame()), { qos: 1 }),
          );
          probe.end(true);
        }),
        budget(60, 0.02),
      );
      const stored = [...gw.frames.query({})];
      expect(stored.length).toBeGreaterThanOrEqual(60);
      for (const f of stored) {
        const s = decodeSign1(f.frame);
        expect(s.ok).toBe(true);
        if (s.ok)
          expect(
            verifyEd25519(devicePublicKey, sigStructure(s.value.protectedBytes, s.value.payload), s.value.signature),
          ).toBe(true);
      }
      expect(new Set(stored.map((f) => `${f.device}/${f.boot}/${f.seq}`)).size).toBe(stored.length);
    },
    fuzzTimeout(40_000),
  );
});
