/**
 * Rollups equal what the stored frames say. Random series (three devices, a few SenML names,
 * random values, record times spread over four hours or relative to the receive time, a few
 * non-numeric records) reach a real block log in random arrival order, in blocks of random
 * size, some heard again: a resend logged a second time by this gateway, or a copy a sibling
 * heard and synced. The rollups are fed as the gateway feeds them (GatewayExport over the
 * real lmdb store and log), sometimes catching up between arrivals, so late frames land in
 * buckets already written. Then, for every series and both steps, the rows (count, min, max,
 * mean) equal the values computed here from the frames the log holds (each once), decoded
 * without the rollup code's helpers.
 */
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../gateway/config.js';
import { publicKeyFromSeed, signEd25519 } from '../../gateway/crypto/ed25519.js';
import { ROLLUP_STEPS_S } from '../../gateway/export/rollups.js';
import { GatewayExport } from '../../gateway/export/start.js';
import { createLogger } from '../../gateway/logger.js';
import {
  decodeBody,
  decodeSign1,
  type ReadingBody,
  type SenmlRecord,
  type SignedBlock,
  signBody,
} from '../../protocols/index.js';
import { testDevice } from '../helpers/devices.js';
import { waitFor } from '../helpers/env.js';
import { logNode } from '../helpers/log-node.js';

const DEVICES = [testDevice('roll-a'), testDevice('roll-b'), testDevice('roll-c')];
const NAMES = ['temp', 'hum', 'vib'];
const SPREAD_MS = 4 * 3_600_000;

const recordArb = fc.record({
  name: fc.constantFrom(...NAMES),
  /** ms from the frame's base time (records of one frame may lie before or after it). */
  offsetMs: fc.integer({ min: -120_000, max: 120_000 }),
  value: fc.oneof(
    fc.integer({ min: -1000, max: 1000 }),
    fc.double({ min: -1e6, max: 1e6, noNaN: true, noDefaultInfinity: true }),
    fc.constant('text'),
    fc.constant(true),
  ),
});

const frameArb = fc.record({
  device: fc.nat(DEVICES.length - 1),
  atMs: fc.integer({ min: 0, max: SPREAD_MS }),
  /** Record times relative to the receive time (no bt, RFC 8428 §4.5.3) instead of absolute. */
  relative: fc.boolean(),
  records: fc.array(recordArb, { minLength: 1, maxLength: 4 }),
});

const scenarioArb = fc
  .record({
    frames: fc.array(frameArb, { minLength: 1, maxLength: 40 }),
    /** Per arrival: a sort key (the arrival order), heard again (by whom), block size, catch up after. */
    arrivals: fc.array(
      fc.record({
        order: fc.double({ min: 0, max: 1, noNaN: true }),
        again: fc.constantFrom('no', 'no', 'no', 'resend', 'sibling'),
        block: fc.integer({ min: 1, max: 6 }),
        settle: fc.boolean(),
      }),
      { minLength: 40, maxLength: 40 },
    ),
  })
  .map(({ frames, arrivals }) => ({ frames, arrivals: arrivals.slice(0, frames.length) }));

type Bucket = { count: number; min: number; max: number; sum: number };

/**
 * The numeric (name, time ms, value) of a stored frame, resolved here: bn and bt carry forward
 * (RFC 8428 §4.6), a time below 2^28 s is relative to the receive time (§4.5.3).
 */
function numericRecords(frame: Uint8Array, rxTime: number): { name: string; time: number; value: number }[] {
  const cose = decodeSign1(frame);
  if (!cose.ok) throw new Error('stored frame does not decode');
  const body = decodeBody(cose.value.payload);
  if (!body.ok || body.value.type !== 'reading') throw new Error('stored frame is not a reading');
  let bn = '';
  let bt = 0;
  const out: { name: string; time: number; value: number }[] = [];
  for (const r of body.value.records) {
    if (r.bn !== undefined) bn = r.bn;
    if (r.bt !== undefined) bt = r.bt;
    if (typeof r.v === 'number') {
      const t = bt + (r.t ?? 0);
      out.push({ name: bn + (r.n ?? ''), time: Math.round((t < 2 ** 28 ? rxTime / 1000 + t : t) * 1000), value: r.v });
    }
  }
  return out;
}

const zero = (x: number): number => x + 0; // -0 and 0 are one value to a rollup

describe('rollups', () => {
  it('equal count/min/max/mean computed from the stored frames, whatever the arrival order, duplicates once', async () => {
    const seedA = randomBytes(32);
    const seedB = randomBytes(32);
    await fc.assert(
      fc.asyncProperty(scenarioArb, async ({ frames, arrivals }) => {
        const closers: (() => Promise<void> | void)[] = [];
        try {
          const own = logNode(seedA, [publicKeyFromSeed(seedB)], DEVICES, closers);
          const sibling = logNode(seedB, [publicKeyFromSeed(seedA)], DEVICES, closers);
          // Frame base times from four and a half hours ago, so every bucket is inside the default retention.
          const base = Date.now() - SPREAD_MS - 1_800_000;
          const seqs = new Map<number, number>();
          const signed = frames.map((f) => {
            const dev = DEVICES[f.device]!;
            const seq = seqs.get(f.device) ?? 0;
            seqs.set(f.device, seq + 1);
            const bt = (base + f.atMs) / 1000;
            const records: SenmlRecord[] = f.records.map((r, i) => ({
              ...(i === 0 && { bn: `${dev.id}:`, ...(!f.relative && { bt }) }),
              n: r.name,
              t: r.offsetMs / 1000,
              ...(typeof r.value === 'number'
                ? { v: r.value }
                : typeof r.value === 'string'
                  ? { vs: r.value }
                  : { vb: r.value }),
            }));
            const body: ReadingBody = { type: 'reading', boot: 1, seq, time: base + f.atMs, records };
            return signBody(body, dev.id, (m) => signEd25519(dev.seed, m));
          });

          const exports = new GatewayExport({
            config: validateConfig({
              gateway: { id: 'gw-roll', dataDir: '/nonexistent' },
              mqtt: { enabled: false },
              api: { enabled: false },
              simulate: { devices: 0 },
            }),
            store: own.store,
            blockLog: own.log,
            selfKey: own.identity.publicKey,
            log: createLogger('silent'),
          }).start();
          closers.unshift(() => exports.stop());
          const rollups = exports.rollups!;
          const lag = (): number => exports.status().rollups!.lagBlocks;

          // Arrival: each frame once in random order, a resend of some later on, a sibling's copy of others.
          // A frame with relative times is heard once: heard twice at different times, its records'
          // times differ per copy (the rollups take the copy exported first; README "Not yet").
          const order = arrivals
            .map((a, i) => ({ ...a, again: frames[i]!.relative ? 'no' : a.again, i }))
            .sort((x, y) => x.order - y.order);
          const deliveries = [
            ...order.map((a) => ({ i: a.i, by: 'own' as const, a })),
            ...order.filter((a) => a.again === 'resend').map((a) => ({ i: a.i, by: 'own' as const, a })),
          ];
          const siblingCopies = order.filter((a) => a.again === 'sibling').map((a) => a.i);
          // Receive times 7 s apart: relative record times spread over minutes of arrival.
          let rx = Date.now();
          const entry = (i: number) => ({ frame: signed[i]!, rxTime: (rx += 7_000), transport: 'mqtt' });
          const applyAll = (blocks: SignedBlock[]): void => {
            for (const sb of blocks) expect(own.log.apply(sb.envelope)).toMatchObject({ status: 'applied' });
          };
          let k = 0;
          let s = 0;
          while (k < deliveries.length) {
            const size = deliveries[k]!.a.block;
            own.log.appendFrames(deliveries.slice(k, k + size).map((d) => entry(d.i)));
            k += size;
            // The sibling's copies come in between, in blocks of its own.
            if (s < siblingCopies.length) {
              applyAll(sibling.log.appendFrames(siblingCopies.slice(s, s + size).map(entry)));
              s += size;
            }
            if (deliveries[k - 1]?.a.settle) {
              await own.log.settled();
              await waitFor(() => lag() === 0, 10_000, 'rollups caught up');
            }
          }
          await own.log.settled();
          await waitFor(() => lag() === 0, 10_000, 'rollups caught up');

          // Expected, from the frames the log holds (once each).
          const stored = [...own.log.frames.query({})];
          expect(stored).toHaveLength(frames.length);
          const want = new Map<string, Map<number, Map<number, Bucket>>>(); // series → step → bucket
          for (const row of stored)
            for (const r of numericRecords(row.frame, row.rxTime)) {
              const series = `${row.device}\u0000${r.name}`;
              for (const step of ROLLUP_STEPS_S) {
                const t = Math.floor(r.time / (step * 1000)) * step * 1000;
                const bySeries = want.get(series) ?? new Map<number, Map<number, Bucket>>();
                want.set(series, bySeries);
                const byStep = bySeries.get(step) ?? new Map<number, Bucket>();
                bySeries.set(step, byStep);
                const b = byStep.get(t);
                byStep.set(
                  t,
                  b
                    ? {
                        count: b.count + 1,
                        min: Math.min(b.min, r.value),
                        max: Math.max(b.max, r.value),
                        sum: b.sum + r.value,
                      }
                    : { count: 1, min: r.value, max: r.value, sum: r.value },
                );
              }
            }

          expect(new Set([...rollups.seriesList()].map(([d, n]) => `${d}\u0000${n}`))).toEqual(new Set(want.keys()));
          for (const [series, bySeries] of want) {
            const [device, name] = series.split('\u0000') as [string, string];
            // Each step from its own buckets, and hours also merged from the minute buckets.
            for (const [step, from] of [
              [60, 60],
              [3600, 3600],
              [3600, 60],
            ] as const) {
              const rows = rollups.query(device, name, base - 86_400_000, Date.now() + 86_400_000, step * 1000, from);
              const expected = [...bySeries.get(step)!].sort((x, y) => x[0] - y[0]);
              expect(rows.map((p) => [p.t, p.count, zero(p.min), zero(p.max)])).toEqual(
                expected.map(([t, b]) => [t, b.count, zero(b.min), zero(b.max)]),
              );
              // Sums add in arrival order here and in the rollups: equal up to rounding.
              rows.forEach((p, j) => {
                const b = expected[j]![1];
                const mean = b.sum / b.count;
                expect(Math.abs(p.mean - mean)).toBeLessThanOrEqual(
                  1e-9 * Math.max(1, Math.abs(b.max), Math.abs(b.min)),
                );
              });
            }
          }
        } finally {
          for (const c of closers) await c();
        }
      }),
      { numRuns: 40, interruptAfterTimeLimit: 30_000, markInterruptAsFailure: true },
    );
  }, 60_000);
});
