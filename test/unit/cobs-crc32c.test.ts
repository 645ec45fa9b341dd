/**
 * COBS (protocols/cobs.ts) and CRC-32C (protocols/crc32c.ts) against published
 * vectors (test/vectors/cobs.json, crc32c.json; see PROVENANCE.md) and
 * properties. Each test names the behaviour it checks.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { cobsDecode, cobsEncode, cobsMaxEncodedLength } from '../../protocols/cobs.js';
import { crc32c } from '../../protocols/crc32c.js';
import { errorCode, hex, loadJson, okValue, toHex } from './vector-helpers.js';

interface CobsVectors {
  encode: { source: string; name: string; decoded: string; wire: string }[];
  decodeAlso: { name: string; decoded: string; encoded: string }[];
  decodeErrors: { name: string; encoded: string; code: string }[];
}
const cobs = loadJson<CobsVectors>('cobs.json');
const crcv = loadJson<{
  check: { data: string; crc: string };
  rfc3720: { name: string; data: string; wire: string }[];
}>('crc32c.json');

/**
 * The paper's StuffData (Cheshire & Baker 1999, Figure 5), transcribed as a
 * reference: differs from ours only by an extra empty block after a final
 * 255 block, which we do not write.
 */
function paperStuff(data: Uint8Array): Uint8Array {
  const dst: number[] = [0];
  let codeAt = 0;
  let code = 1;
  const finish = (): void => {
    dst[codeAt] = code;
    codeAt = dst.length;
    dst.push(0);
    code = 1;
  };
  for (const b of data) {
    if (b === 0) finish();
    else {
      dst.push(b);
      code++;
      if (code === 0xff) finish();
    }
  }
  dst[codeAt] = code;
  return Uint8Array.from(dst);
}

describe('COBS vectors (clause: COBS encode/decode, exact at 254-byte runs)', () => {
  it.each(cobs.encode.map((v) => [v.name, v] as const))('%s', (_name, v) => {
    const wire = hex(v.wire);
    expect(wire[wire.length - 1]).toBe(0); // vectors include the 0x00 delimiter
    const encoded = wire.subarray(0, wire.length - 1);
    expect(toHex(cobsEncode(hex(v.decoded)))).toBe(toHex(encoded));
    expect(toHex(okValue(cobsDecode(encoded)))).toBe(v.decoded);
  });

  it('has the 254/255-byte edge cases (Wikipedia 7-11) among the vectors', () => {
    const lens = cobs.encode.filter((v) => v.source === 'wikipedia').map((v) => hex(v.decoded).length);
    expect(lens).toEqual([1, 2, 3, 4, 4, 4, 254, 255, 255, 255, 255]);
  });

  it.each(cobs.decodeAlso.map((v) => [v.name, v] as const))('decodes the alternative form: %s', (_name, v) => {
    expect(toHex(okValue(cobsDecode(hex(v.encoded))))).toBe(v.decoded);
  });

  it.each(cobs.decodeErrors.map((v) => [v.name, v] as const))('refuses bad input: %s', (_name, v) => {
    expect(errorCode(cobsDecode(hex(v.encoded)))).toBe(v.code);
  });
});

describe('COBS properties (clause: COBS round trip)', () => {
  const data = fc.oneof(
    fc.uint8Array({ maxLength: 1200 }),
    // Zero-poor data stresses the 254-byte runs.
    fc
      .array(fc.oneof(fc.integer({ min: 1, max: 255 }), fc.constant(0)), { maxLength: 1200 })
      .map((a) => Uint8Array.from(a)),
    fc.integer({ min: 250, max: 770 }).map((n) => new Uint8Array(n).fill(7)),
  );

  it('decode(encode(x)) = x, no 0x00 in the output, length within the COBS bound', () => {
    fc.assert(
      fc.property(data, (d) => {
        const e = cobsEncode(d);
        expect(e.includes(0)).toBe(false);
        expect(e.length).toBeLessThanOrEqual(cobsMaxEncodedLength(d.length));
        expect(e.length).toBeGreaterThanOrEqual(d.length + 1);
        expect(toHex(okValue(cobsDecode(e)))).toBe(toHex(d));
      }),
      { numRuns: 500 },
    );
  });

  it("equals the paper's StuffData except for its trailing empty block after a final full block", () => {
    fc.assert(
      fc.property(data, (d) => {
        const ours = cobsEncode(d);
        let paper = paperStuff(d);
        if (paper.length === ours.length + 1 && paper[paper.length - 1] === 1)
          paper = paper.subarray(0, paper.length - 1);
        expect(toHex(ours)).toBe(toHex(paper));
        // and the paper's form decodes to the same bytes
        expect(toHex(okValue(cobsDecode(paperStuff(d))))).toBe(toHex(d));
      }),
      { numRuns: 300 },
    );
  });

  it('random bytes never throw: a typed result or the bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (b) => {
        const r = cobsDecode(b);
        if (r.ok) expect(toHex(okValue(cobsDecode(cobsEncode(r.value))))).toBe(toHex(r.value));
        else expect(['cobs/empty', 'cobs/zero-byte', 'cobs/truncated']).toContain(r.error.code);
      }),
      { numRuns: 500 },
    );
  });
});

describe('CRC-32C (clause: CRC-32C, check value e3069283)', () => {
  it('check value for "123456789" is e3069283', () => {
    expect(crc32c(hex(crcv.check.data)).toString(16).padStart(8, '0')).toBe(crcv.check.crc);
    expect(crc32c(new TextEncoder().encode('123456789'))).toBe(0xe3069283);
  });

  it.each(crcv.rfc3720.map((v) => [v.name, v] as const))(
    'RFC 3720 B.4: %s (CRC bytes as sent, little-endian)',
    (_n, v) => {
      const c = crc32c(hex(v.data));
      const le = Buffer.alloc(4);
      le.writeUInt32LE(c);
      expect(le.toString('hex')).toBe(v.wire);
    },
  );

  it('empty input is 0', () => expect(crc32c(new Uint8Array(0))).toBe(0));

  it('matches a bit-at-a-time reference and continues across any split', () => {
    const ref = (d: Uint8Array): number => {
      let c = 0xffffffff;
      for (const b of d) {
        c ^= b;
        for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
      }
      return (c ^ 0xffffffff) >>> 0;
    };
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(), (d, s) => {
        const cut = d.length ? s % (d.length + 1) : 0;
        expect(crc32c(d)).toBe(ref(d));
        expect(crc32c(d.subarray(cut), crc32c(d.subarray(0, cut)))).toBe(ref(d));
        expect(crc32c(d, 0, cut, d.length)).toBe(ref(d.subarray(cut)));
      }),
      { numRuns: 400 },
    );
  });
});
