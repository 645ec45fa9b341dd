/**
 * ATT writes to the simulated radio as one binary websocket message (firmware-sim's
 * transports/ble-radio.ts; gateway/transports/ble-noble.ts). noble's websocket protocol sends
 * each write as its own JSON command with the bytes in hex: at MTU 247 a 1 MiB firmware image
 * is ~4 300 of them, each built, masked, framed, parsed and hex-decoded. A radio that says it
 * takes binary writes (`{"type":"features","writes":"binary"}`, before `stateChange`) gets a
 * run of writes to one characteristic in one message instead:
 *
 *     0x01                      kind: writes
 *     flags                     bit 0: without response
 *     3 × (u8 length, ASCII)    peripheral, service and characteristic UUIDs
 *     n × (u16 LE length, bytes) the ATT payloads, in order, each at least 1 byte
 *
 * The radio hands each payload to the peripheral as its own ATT write, as before: only the
 * host-to-radio hop carries them together (as HCI hands a controller several ACL packets).
 * Pure: no I/O.
 */

const RADIO_WRITES_KIND = 0x01;
const WITHOUT_RESPONSE = 0x01;

export interface RadioWrites {
  readonly peripheralUuid: string;
  readonly serviceUuid: string;
  readonly characteristicUuid: string;
  readonly withoutResponse: boolean;
  readonly payloads: Uint8Array[];
}

/** Bytes of the header for these UUIDs (kind, flags, the three strings). */
function radioWritesHeaderLength(peripheralUuid: string, serviceUuid: string, characteristicUuid: string): number {
  return 2 + 3 + peripheralUuid.length + serviceUuid.length + characteristicUuid.length;
}

/**
 * Encodes writes to one characteristic; `total` is the payloads' byte count. Throws on a
 * payload that is empty or over 65 535 bytes, or a UUID that is not ASCII of at most 255.
 */
export function encodeRadioWrites(w: RadioWrites, total = sum(w.payloads)): Buffer {
  const out = Buffer.allocUnsafe(
    radioWritesHeaderLength(w.peripheralUuid, w.serviceUuid, w.characteristicUuid) + 2 * w.payloads.length + total,
  );
  out[0] = RADIO_WRITES_KIND;
  out[1] = w.withoutResponse ? WITHOUT_RESPONSE : 0;
  let at = 2;
  for (const s of [w.peripheralUuid, w.serviceUuid, w.characteristicUuid]) {
    if (s.length > 255 || !/^[\x20-\x7e]*$/.test(s)) throw new RangeError('radio writes: a UUID must be ASCII, ≤ 255');
    out[at++] = s.length;
    at += out.write(s, at, 'latin1');
  }
  for (const p of w.payloads) {
    if (p.length === 0 || p.length > 0xffff) throw new RangeError('radio writes: a payload must be 1..65535 bytes');
    out[at] = p.length & 0xff;
    out[at + 1] = p.length >>> 8;
    out.set(p, at + 2);
    at += 2 + p.length;
  }
  return out;
}

/** Decodes a message; undefined when it is not a whole, well-formed writes message (nothing of it is used then). */
export function decodeRadioWrites(b: Uint8Array): RadioWrites | undefined {
  if (b.length < 5 || b[0] !== RADIO_WRITES_KIND || (b[1]! & ~WITHOUT_RESPONSE) !== 0) return undefined;
  const strings: string[] = [];
  let at = 2;
  for (let k = 0; k < 3; k++) {
    const n = b[at];
    if (n === undefined || at + 1 + n > b.length) return undefined;
    let s = '';
    for (let i = at + 1; i < at + 1 + n; i++) {
      const c = b[i]!;
      if (c < 0x20 || c > 0x7e) return undefined;
      s += String.fromCharCode(c);
    }
    strings.push(s);
    at += 1 + n;
  }
  const payloads: Uint8Array[] = [];
  while (at < b.length) {
    if (at + 2 > b.length) return undefined;
    const n = b[at]! | (b[at + 1]! << 8);
    if (n === 0 || at + 2 + n > b.length) return undefined;
    payloads.push(b.subarray(at + 2, at + 2 + n));
    at += 2 + n;
  }
  if (payloads.length === 0) return undefined;
  return {
    peripheralUuid: strings[0]!,
    serviceUuid: strings[1]!,
    characteristicUuid: strings[2]!,
    withoutResponse: (b[1]! & WITHOUT_RESPONSE) !== 0,
    payloads,
  };
}

function sum(ps: readonly Uint8Array[]): number {
  let n = 0;
  for (const p of ps) n += p.length;
  return n;
}
