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
 *
 * Notifications the other way, to a central that asked for them in binary
 * (`{"action":"features","notify":"binary"}` after the radio announced `notify: "binary"`), go
 * one a message, kind 0x02, flags 0, the same UUIDs and one payload: so the notify rate the
 * benches compare a transfer with is carried as cheaply as the writes.
 * Pure: no I/O.
 */

const RADIO_WRITES_KIND = 0x01;
const RADIO_NOTIFY_KIND = 0x02;
const WITHOUT_RESPONSE = 0x01;

/** Where a run of writes goes: one characteristic of one peripheral. */
export interface RadioWritesTarget {
  readonly peripheralUuid: string;
  readonly serviceUuid: string;
  readonly characteristicUuid: string;
  readonly withoutResponse: boolean;
}

export interface RadioWrites extends RadioWritesTarget {
  readonly payloads: Uint8Array[];
}

const PRINTABLE = /^[\x20-\x7e]*$/;

/**
 * Encodes writes to one characteristic: each of `runs` split into ATT payloads of at most
 * `atts[i]` bytes (a framed chunk and its MTU − 3; without `atts`, each run is one payload).
 * Throws on an empty run, a payload over 65 535 bytes, or a UUID not ASCII of at most 255.
 */
export function encodeRadioWrites(t: RadioWritesTarget, runs: readonly Uint8Array[], atts?: readonly number[]): Buffer {
  return encodeRadioMessage(RADIO_WRITES_KIND, t, runs, atts);
}

/** Encodes one notification of a characteristic (`withoutResponse` is not carried). Throws as encodeRadioWrites does. */
export function encodeRadioNotification(t: Omit<RadioWritesTarget, 'withoutResponse'>, payload: Uint8Array): Buffer {
  return encodeRadioMessage(RADIO_NOTIFY_KIND, { ...t, withoutResponse: false }, [payload]);
}

function encodeRadioMessage(
  kind: number,
  t: RadioWritesTarget,
  runs: readonly Uint8Array[],
  atts?: readonly number[],
): Buffer {
  const ids = [t.peripheralUuid, t.serviceUuid, t.characteristicUuid];
  let size = 2 + 3;
  for (const s of ids) {
    if (s.length > 255 || !PRINTABLE.test(s)) throw new RangeError('radio writes: a UUID must be ASCII, ≤ 255');
    size += s.length;
  }
  for (let r = 0; r < runs.length; r++) {
    const len = runs[r]!.length;
    const att = atts?.[r] ?? len;
    if (len === 0 || att < 1 || att > 0xffff) throw new RangeError('radio writes: a payload must be 1..65535 bytes');
    size += len + 2 * Math.ceil(len / att);
  }
  const out = Buffer.allocUnsafe(size);
  out[0] = kind;
  out[1] = t.withoutResponse ? WITHOUT_RESPONSE : 0;
  let at = 2;
  for (const s of ids) {
    out[at++] = s.length;
    at += out.write(s, at, 'latin1');
  }
  for (let r = 0; r < runs.length; r++) {
    const run = runs[r]!;
    const att = atts?.[r] ?? run.length;
    for (let i = 0; i < run.length; i += att) {
      const n = Math.min(att, run.length - i);
      out[at] = n & 0xff;
      out[at + 1] = n >>> 8;
      out.set(i === 0 && n === run.length ? run : run.subarray(i, i + n), at + 2);
      at += 2 + n;
    }
  }
  return out;
}

/** Decodes a message; undefined when it is not a whole, well-formed writes message (nothing of it is used then). */
export function decodeRadioWrites(b: Uint8Array): RadioWrites | undefined {
  return decodeRadioMessage(RADIO_WRITES_KIND, b);
}

/** Decodes a notification message; undefined when it is not one whole, well-formed notification. */
export function decodeRadioNotification(
  b: Uint8Array,
): (Omit<RadioWritesTarget, 'withoutResponse'> & { readonly payload: Uint8Array }) | undefined {
  const m = b[1] === 0 ? decodeRadioMessage(RADIO_NOTIFY_KIND, b) : undefined;
  if (m?.payloads.length !== 1) return undefined;
  const { peripheralUuid, serviceUuid, characteristicUuid } = m;
  return { peripheralUuid, serviceUuid, characteristicUuid, payload: m.payloads[0]! };
}

function decodeRadioMessage(kind: number, b: Uint8Array): RadioWrites | undefined {
  if (b.length < 5 || b[0] !== kind || (b[1]! & ~WITHOUT_RESPONSE) !== 0) return undefined;
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
