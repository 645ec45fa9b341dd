/**
 * Ingest never throws on wire input and never drops good data around bad data:
 * random bytes and mutated frames are interleaved with good frames (fast-check).
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../gateway/config.js';
import { Gateway } from '../../gateway/gateway.js';
import type { IngestOutcome } from '../../gateway/ingest/outcome.js';
import { signEd25519 } from '../../gateway/crypto/ed25519.js';
import { ALG_ED25519, deviceIdToKid, encodeBody, encodeSign1 } from '../../protocols/index.js';
import { testDevice } from '../helpers/devices.js';
import { memoryLogger, tempDir } from '../helpers/env.js';

describe('ingest robustness', () => {
  const tmp = tempDir();
  const dev = testDevice('fuzz-1');
  let gw: Gateway;
  let seq = 0;

  beforeAll(async () => {
    gw = await Gateway.start(
      validateConfig({
        gateway: { dataDir: tmp.dir },
        mqtt: { enabled: false },
        api: { enabled: false },
        devices: [{ id: dev.id, publicKey: dev.publicKeyHex }],
      }),
      { logger: memoryLogger().log, simulate: false },
    );
  });
  afterAll(async () => {
    await gw.stop();
    tmp.cleanup();
  });

  type Mutation =
    | { kind: 'random'; bytes: Uint8Array }
    | { kind: 'flip'; at: number; x: number }
    | { kind: 'truncate'; n: number }
    | { kind: 'append'; bytes: Uint8Array };
  const mutation: fc.Arbitrary<Mutation> = fc.oneof(
    fc.uint8Array({ maxLength: 600 }).map((bytes) => ({ kind: 'random' as const, bytes })),
    fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })).map(([at, x]) => ({ kind: 'flip' as const, at, x })),
    fc.nat().map((n) => ({ kind: 'truncate' as const, n })),
    fc.uint8Array({ minLength: 1, maxLength: 40 }).map((bytes) => ({ kind: 'append' as const, bytes })),
  );

  it('answers every bad frame with a typed outcome and stores every good one', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 20 }), async (muts) => {
        const good: number[] = [];
        const mutatedSeqs: number[] = [];
        const pending: Promise<IngestOutcome>[] = [];
        for (const m of muts) {
          const s = ++seq;
          mutatedSeqs.push(s);
          const frame = dev.frame(1, s);
          let bad: Uint8Array;
          if (m.kind === 'random') bad = m.bytes;
          else if (m.kind === 'flip') {
            bad = frame.slice();
            bad[m.at % bad.length]! ^= m.x;
          } else if (m.kind === 'truncate') bad = frame.slice(0, m.n % frame.length);
          else bad = new Uint8Array([...frame, ...m.bytes]);
          pending.push(gw.ingest.submit(bad, { transport: 'fuzz', claimedDevice: dev.id }));
          good.push(++seq);
          pending.push(gw.ingest.submit(dev.frame(1, seq), { transport: 'fuzz', claimedDevice: dev.id }));
        }
        const outcomes = await Promise.all(pending);
        for (let i = 0; i < outcomes.length; i += 2) {
          const bad = outcomes[i]!;
          // The signed bytes are covered by the signature, so a mutation can only survive in an
          // unsigned spot that changes nothing (e.g. an equivalent header encoding): then it is
          // the original reading, under its own (boot, seq). Anything else is rejected with a reason.
          if (bad.status === 'stored') expect(bad.seq).toBe(mutatedSeqs[i / 2]);
          else expect(bad).toMatchObject({ status: 'rejected', reason: expect.stringMatching(/^[a-z-]+$/) });
          expect(outcomes[i + 1]).toMatchObject({ status: 'stored' });
        }
        const stored = new Set([...gw.frames.query({ device: dev.id })].map((f) => f.seq));
        for (const s of good) expect(stored.has(s)).toBe(true);
      }),
      { numRuns: 40 },
    );
  });

  it('a frame signed by an enrolled device under another COSE alg is rejected as unsupported-alg', async () => {
    const signed = (alg: number, s: number): Uint8Array =>
      encodeSign1(
        {
          alg,
          kid: deviceIdToKid(dev.id),
          payload: encodeBody({ type: 'reading', boot: 2, seq: s, records: [{ n: 'temp', v: 1 }] }),
        },
        (m) => signEd25519(dev.seed, m),
      );
    expect(await gw.ingest.submit(signed(-7, 1), { transport: 'test' })).toMatchObject({
      status: 'rejected',
      reason: 'unsupported-alg',
    });
    expect(await gw.ingest.submit(signed(ALG_ED25519, 2), { transport: 'test' })).toMatchObject({ status: 'stored' });
  });
});
