/** Turns decoded CBOR into JSON-friendly values for printing. */
import { type CborValue, Tagged, toHex } from '../../protocols/index.js';

export function cborToJson(v: CborValue): unknown {
  if (v instanceof Uint8Array) return `h'${toHex(v)}'`;
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Tagged) return { tag: v.tag, value: cborToJson(v.value) };
  if (Array.isArray(v)) return v.map(cborToJson);
  if (v instanceof Map) {
    const o: Record<string, unknown> = {};
    for (const [k, x] of v) o[String(k)] = cborToJson(x);
    return o;
  }
  return v;
}

/** JSON.stringify that renders byte strings as hex and bigints as strings. */
export function toJson(value: unknown, indent?: number): string {
  // Buffer.toJSON runs before a replacer sees the value, so look at the holder's original.
  return JSON.stringify(
    value,
    function (this: Record<string, unknown>, k: string, v: unknown) {
      const orig = this[k];
      if (orig instanceof Uint8Array) return toHex(orig);
      if (typeof v === 'bigint') return v.toString();
      return v;
    },
    indent,
  );
}
