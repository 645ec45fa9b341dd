/**
 * The simulated radio's binary writes and notification messages (protocols/radio-writes.ts):
 * what is encoded decodes to the same writes or notification, and anything else (cut short, a
 * bad length, another kind, noise) decodes to nothing rather than to part of it, and never throws.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeRadioNotification,
  decodeRadioWrites,
  encodeRadioNotification,
  encodeRadioWrites,
  type RadioWrites,
} from '../../protocols/radio-writes.js';

const ascii = fc.string({
  unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
  maxLength: 40,
});
const writesArb: fc.Arbitrary<RadioWrites> = fc.record({
  peripheralUuid: ascii,
  serviceUuid: ascii,
  characteristicUuid: ascii,
  withoutResponse: fc.boolean(),
  payloads: fc.array(fc.uint8Array({ minLength: 1, maxLength: 600 }), { minLength: 1, maxLength: 20 }),
});

const plain = (w: RadioWrites) => ({ ...w, payloads: w.payloads.map((p) => [...p]) });

describe('radio writes message', () => {
  it('round-trips any writes to one characteristic', () => {
    fc.assert(
      fc.property(writesArb, (w) => {
        const d = decodeRadioWrites(encodeRadioWrites(w, w.payloads));
        expect(d && plain(d)).toEqual(plain(w));
      }),
    );
  });

  it('runs cut into ATT payloads of at most their size: the payloads are the runs, in order, each cut at that size', () => {
    fc.assert(
      fc.property(
        writesArb,
        fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 20, maxLength: 20 }),
        (w, atts) => {
          const d = decodeRadioWrites(encodeRadioWrites(w, w.payloads, atts));
          const want: number[][] = [];
          w.payloads.forEach((p, r) => {
            for (let i = 0; i < p.length; i += atts[r]!) want.push([...p.subarray(i, i + atts[r]!)]);
          });
          expect(d?.payloads.map((p) => [...p])).toEqual(want);
        },
      ),
    );
  });

  it('a message cut anywhere but between two payloads decodes to nothing; cut between them, to the payloads before', () => {
    fc.assert(
      fc.property(writesArb, fc.nat(), (w, cut) => {
        const b = encodeRadioWrites(w, w.payloads);
        const at = cut % b.length;
        const d = decodeRadioWrites(b.subarray(0, at));
        if (d) {
          expect(d.payloads.length).toBeLessThan(w.payloads.length);
          expect(plain(d).payloads).toEqual(plain(w).payloads.slice(0, d.payloads.length));
        }
      }),
    );
  });

  it('a payload length past the end, a zero length, another kind or flags: nothing', () => {
    const w: RadioWrites = {
      peripheralUuid: 'c0fe00000102',
      serviceUuid: 's',
      characteristicUuid: 'c',
      withoutResponse: true,
      payloads: [Uint8Array.of(1, 2, 3)],
    };
    const b = encodeRadioWrites(w, w.payloads);
    const at = b.length - 5; // the payload's length
    const long = Buffer.from(b);
    long[at] = 4;
    expect(decodeRadioWrites(long)).toBeUndefined();
    const zero = Buffer.concat([b, Uint8Array.of(0, 0)]);
    expect(decodeRadioWrites(zero)).toBeUndefined();
    const kind = Buffer.from(b);
    kind[0] = 2;
    expect(decodeRadioWrites(kind)).toBeUndefined();
    const flags = Buffer.from(b);
    flags[1] = 3;
    expect(decodeRadioWrites(flags)).toBeUndefined();
    expect(() => encodeRadioWrites(w, [new Uint8Array(0)])).toThrow(RangeError);
    expect(() => encodeRadioWrites(w, [Uint8Array.of(1)], [0])).toThrow(RangeError);
    expect(() => encodeRadioWrites({ ...w, serviceUuid: 'é' }, w.payloads)).toThrow(RangeError);
  });

  it('random bytes never throw', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (b) => {
        decodeRadioWrites(b);
        decodeRadioNotification(b);
      }),
    );
  });

  it('a notification round-trips, is never read as writes (nor writes as one), and any cut decodes to nothing', () => {
    fc.assert(
      fc.property(writesArb, fc.nat(), (w, cut) => {
        const m = encodeRadioNotification(w, w.payloads[0]!);
        const { peripheralUuid, serviceUuid, characteristicUuid } = w;
        const n = decodeRadioNotification(m);
        expect(n && { ...n, payload: [...n.payload] }).toEqual({
          peripheralUuid,
          serviceUuid,
          characteristicUuid,
          payload: [...w.payloads[0]!],
        });
        expect(decodeRadioWrites(m)).toBeUndefined();
        expect(
          decodeRadioNotification(encodeRadioWrites({ ...w, withoutResponse: false }, w.payloads)),
        ).toBeUndefined();
        expect(decodeRadioNotification(m.subarray(0, cut % m.length))).toBeUndefined();
      }),
    );
  });
});
