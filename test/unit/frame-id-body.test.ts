/**
 * A stored frame's identity, body and resolved records as the export reads them
 * (gateway/log/verify.ts `frameIdAndBody`, by the fast paths sign1-payloads.ts and
 * reading-decode.ts) against the full decoders: decodeSign1, the kid as a device id, decodeBody
 * and resolvePack. fast-check: random readings and command acks, the same frames with one byte
 * changed (whatever that makes of them, both answer alike), devices sharing envelopes.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { frameIdAndBody } from '../../gateway/log/verify.js';
import {
  type UplinkBody,
  decodeBody,
  decodeSign1,
  kidToDeviceId,
  resolvePack,
  type SenmlRecord,
  signBody,
} from '../../protocols/index.js';

const T0 = Date.UTC(2026, 0, 1) / 1000;

const record = fc
  .tuple(
    fc.stringMatching(/^[a-z][a-z0-9_]{0,6}$/),
    fc.oneof(
      fc.record({ v: fc.oneof(fc.integer({ min: -1e6, max: 1e6 }), fc.double({ noNaN: true, min: -1e9, max: 1e9 })) }),
      fc.record({ vs: fc.string({ maxLength: 12 }) }),
      fc.record({ vb: fc.boolean() }),
      fc.record({ vd: fc.uint8Array({ maxLength: 12 }) }),
    ),
    fc.option(fc.constantFrom('Cel', '%RH'), { nil: undefined }),
    fc.option(fc.integer({ min: -600, max: 600 }), { nil: undefined }),
  )
  .map(([n, v, u, t]): SenmlRecord => ({ n, ...v, ...(u !== undefined && { u }), ...(t !== undefined && { t }) }));

const body: fc.Arbitrary<UplinkBody> = fc.oneof(
  fc.record({
    type: fc.constant('reading' as const),
    boot: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
    seq: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
    time: fc.integer({ min: T0, max: T0 + 1e6 }),
    records: fc.array(record, { minLength: 1, maxLength: 5 }),
  }),
  fc.record({
    type: fc.constant('command-ack' as const),
    boot: fc.integer({ min: 0, max: 1000 }),
    seq: fc.integer({ min: 0, max: 1000 }),
    time: fc.integer({ min: T0, max: T0 + 1e6 }),
    commandId: fc.uint8Array({ minLength: 4, maxLength: 32 }),
    status: fc.integer({ min: 0, max: 255 }),
  }),
);

/** What the full decoders make of a frame. */
function reference(frame: Uint8Array): unknown {
  const cose = decodeSign1(frame);
  if (!cose.ok) return undefined;
  const device = kidToDeviceId(cose.value.kid);
  if (device === undefined) return undefined;
  const b = decodeBody(cose.value.payload);
  if (!b.ok || (b.value.type !== 'reading' && b.value.type !== 'command-ack')) return undefined;
  const resolved = b.value.type === 'reading' ? resolvePack(b.value.records) : undefined;
  return {
    id: { device, boot: b.value.boot, seq: b.value.seq },
    body: b.value,
    resolved: resolved?.ok ? resolved.value : undefined,
  };
}

describe('frameIdAndBody', () => {
  it('[property] answers as the full decoders do, for frames as signed and with a byte changed', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('dev-a', 'dev-b', 'sensor.7'),
        body,
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        (device, b, at, flip) => {
          const frame = signBody(b, device, () => new Uint8Array(64).fill(7));
          expect(frameIdAndBody(frame)).toEqual(reference(frame));
          expect(frameIdAndBody(frame)?.id).toEqual({ device, boot: b.boot, seq: b.seq });
          const changed = frame.slice();
          changed[at % changed.length]! ^= flip;
          expect(frameIdAndBody(changed)).toEqual(reference(changed));
        },
      ),
      { numRuns: 500 },
    );
  });
});
