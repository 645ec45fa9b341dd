/**
 * Shared vectors for the C firmware companion (hardware/firmware): frames the
 * TypeScript protocols/ produce for fixed keys and inputs. Ed25519 is
 * deterministic (RFC 8032 §5.1.6), so the C library must produce the same bytes.
 *
 *   npx tsx test/vectors/generate-firmware-vectors.ts          writes firmware-vectors.json,
 *                                                             hardware/firmware/test/vectors.h
 *                                                             and update_vectors.h (firmware updates)
 *   npx tsx test/vectors/generate-firmware-vectors.ts --check  exits 1 if either file is stale
 *
 * test/unit/firmware-vectors.test.ts re-derives the JSON from protocols/ and
 * checks that the committed C header is the rendering of the JSON.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeBody, encodeSerialFrame, type SenmlRecord, signBody, toHex } from '../../protocols/index.js';
import { publicKeyFromSeed, signEd25519 } from '../../gateway/crypto/ed25519.js';
import { buildUpdateVectors, renderUpdateHeader } from './firmware-update-vectors.js';

const here = dirname(fileURLToPath(import.meta.url));
export const JSON_PATH = join(here, 'firmware-vectors.json');
export const HEADER_PATH = join(here, '../../hardware/firmware/test/vectors.h');
export const UPDATE_HEADER_PATH = join(here, '../../hardware/firmware/test/update_vectors.h');
export { renderUpdateHeader };

const seq32 = (start: number, step: number): Uint8Array =>
  Uint8Array.from({ length: 32 }, (_, i) => (start + i * step) & 0xff);
const DEVICE_SEED = seq32(1, 7);
const GATEWAY_SEED = seq32(200, 13);
const DEVICE_ID = 'fw-dev-1';
const GATEWAY_ID = 'gw-vectors';

interface ReadingIn {
  name: string;
  boot: number;
  seq: number;
  time?: number;
  records: SenmlRecord[];
}
interface AckIn {
  name: string;
  boot: number;
  seq: number;
  time?: number;
  commandId: string;
  status: number;
}
interface CommandIn {
  name: string;
  id: string;
  target: string;
  actuator: string;
  value: number | boolean | string;
  expires: number;
  issued: number;
  fence?: number;
}
interface FrameAckIn {
  name: string;
  boot: number;
  seq: number;
  status: number;
}

const readings: ReadingIn[] = [
  { name: 'one record, integer value', boot: 1, seq: 0, records: [{ n: 'temp', u: 'Cel', v: 21 }] },
  {
    name: 'base name and time, three records, device time',
    boot: 7,
    seq: 41,
    time: 1_764_000_000_123,
    records: [
      { bn: 'fw-dev-1/', bt: 1_764_000_000, n: 'temp', u: 'Cel', v: 21.5 },
      { n: 'hum', u: '%RH', v: 48.25, t: -1 },
      { n: 'door', vb: true },
    ],
  },
  {
    name: 'negative, fractional, large and string values',
    boot: 4_294_967_295,
    seq: 4_294_967_295,
    time: 1,
    records: [
      { bn: 'x:', bu: 'V', n: 'a', v: -40 },
      { n: 'b', v: 0.1, t: 1.5 },
      { n: 'c', v: 4_294_967_296 },
      { n: 'd', v: -2_147_483_649 },
      { n: 'e', vs: 'ok' },
      { n: 'f', s: 1e300 },
      { n: 'g', v: 9_007_199_254_740_992 },
    ],
  },
  { name: 'long name: 1-byte text head boundary', boot: 0, seq: 23, records: [{ n: 'n'.repeat(24), v: 255 }] },
];
const acks: AckIn[] = [
  { name: 'ok, no time', boot: 1, seq: 1, commandId: '00010203', status: 0 },
  {
    name: 'unknown actuator, with time',
    boot: 9,
    seq: 300,
    time: 1_764_000_000_999,
    commandId: 'a1'.repeat(16),
    status: 7,
  },
];
const commands: CommandIn[] = [
  {
    name: 'numeric value with fence',
    id: 'c0ffee01',
    target: DEVICE_ID,
    actuator: 'relay',
    value: 1,
    expires: 1_764_000_060_000,
    issued: 1_764_000_000_000,
    fence: 3,
  },
  {
    name: 'boolean value',
    id: '0102030405060708090a0b0c0d0e0f10',
    target: DEVICE_ID,
    actuator: 'valve',
    value: false,
    expires: 2_000_000_000_000,
    issued: 1_999_999_990_000,
  },
  {
    name: 'float value',
    id: 'deadbeef',
    target: DEVICE_ID,
    actuator: 'fan',
    value: 0.75,
    expires: 2_000_000_000_000,
    issued: 1_999_999_990_000,
  },
  {
    name: 'negative value',
    id: 'deadbee0',
    target: DEVICE_ID,
    actuator: 'heater',
    value: -5,
    expires: 2_000_000_000_000,
    issued: 1_999_999_990_000,
    fence: 4_294_967_296,
  },
  {
    name: 'text value, other target',
    id: 'deadbee1',
    target: 'fw-dev-2',
    actuator: 'mode',
    value: 'eco',
    expires: 2_000_000_000_000,
    issued: 1_999_999_990_000,
  },
];
const frameAcks: FrameAckIn[] = [
  { name: 'stored', boot: 1, seq: 0, status: 0 },
  { name: 'failed (resend)', boot: 7, seq: 41, status: 6 },
  { name: 'max counters, duplicate', boot: 4_294_967_295, seq: 4_294_967_295, status: 1 },
];

const fromHex = (h: string): Uint8Array => Uint8Array.from(Buffer.from(h, 'hex'));
const deviceSign = (m: Uint8Array) => signEd25519(DEVICE_SEED, m);
const gatewaySign = (m: Uint8Array) => signEd25519(GATEWAY_SEED, m);

function out(frame: Uint8Array, body: Uint8Array) {
  return { body: toHex(body), frame: toHex(frame), wire: toHex(encodeSerialFrame(frame)) };
}

export function buildVectors() {
  return {
    description:
      'Outpost frames from protocols/ (TypeScript) for the C firmware companion; regenerate with npx tsx test/vectors/generate-firmware-vectors.ts',
    device: { id: DEVICE_ID, seed: toHex(DEVICE_SEED), publicKey: toHex(publicKeyFromSeed(DEVICE_SEED)) },
    gateway: { id: GATEWAY_ID, seed: toHex(GATEWAY_SEED), publicKey: toHex(publicKeyFromSeed(GATEWAY_SEED)) },
    readings: readings.map((r) => {
      const body = {
        type: 'reading' as const,
        boot: r.boot,
        seq: r.seq,
        ...(r.time !== undefined && { time: r.time }),
        records: r.records,
      };
      return { ...r, ...out(signBody(body, DEVICE_ID, deviceSign), encodeBody(body)) };
    }),
    commandAcks: acks.map((a) => {
      const body = {
        type: 'command-ack' as const,
        boot: a.boot,
        seq: a.seq,
        ...(a.time !== undefined && { time: a.time }),
        commandId: fromHex(a.commandId),
        status: a.status,
      };
      return { ...a, ...out(signBody(body, DEVICE_ID, deviceSign), encodeBody(body)) };
    }),
    commands: commands.map((c) => {
      const body = {
        type: 'command' as const,
        id: fromHex(c.id),
        target: c.target,
        actuator: c.actuator,
        value: c.value,
        expires: c.expires,
        issued: c.issued,
        ...(c.fence !== undefined && { fence: c.fence }),
      };
      return { ...c, ...out(signBody(body, GATEWAY_ID, gatewaySign), encodeBody(body)) };
    }),
    frameAcks: frameAcks.map((a) => {
      const body = { type: 'frame-ack' as const, boot: a.boot, seq: a.seq, status: a.status };
      return { ...a, ...out(signBody(body, GATEWAY_ID, gatewaySign), encodeBody(body)) };
    }),
    update: buildUpdateVectors(DEVICE_ID, DEVICE_SEED),
  };
}
export type FirmwareVectors = ReturnType<typeof buildVectors>;

// ---- C header ---------------------------------------------------------------
const cstr = (s: string | undefined): string => (s === undefined ? 'NULL' : JSON.stringify(s));
const cbytes = (hex: string): string => `(const uint8_t *)"${hex.replace(/../g, '\\x$&')}", ${hex.length / 2}`;
function f64bits(v: number | undefined): string {
  if (v === undefined) return '0';
  const b = Buffer.alloc(8);
  b.writeDoubleBE(v);
  return `0x${b.toString('hex')}ull`;
}
const HAS: [keyof SenmlRecord, string][] = [
  ['bu', 'BU'],
  ['bt', 'BT'],
  ['bn', 'BN'],
  ['n', 'N'],
  ['u', 'U'],
  ['v', 'V'],
  ['vs', 'VS'],
  ['vb', 'VB'],
  ['s', 'S'],
  ['t', 'T'],
];

export function renderHeader(v: FirmwareVectors): string {
  const cobs = JSON.parse(readFileSync(join(here, 'cobs.json'), 'utf8')) as {
    encode: { name: string; decoded: string; wire: string }[];
  };
  const crc = JSON.parse(readFileSync(join(here, 'crc32c.json'), 'utf8')) as {
    check: { data: string; crc: string };
    rfc3720: { name: string; data: string; wire: string }[];
  };
  const L: string[] = [];
  L.push('/* GENERATED by test/vectors/generate-firmware-vectors.ts from test/vectors/firmware-vectors.json,');
  L.push(' * cobs.json and crc32c.json. Do not edit. */');
  L.push(
    '#ifndef OUTPOST_TEST_VECTORS_H',
    '#define OUTPOST_TEST_VECTORS_H',
    '#include <stdbool.h>',
    '#include <stddef.h>',
    '#include <stdint.h>',
    '',
  );
  L.push('typedef struct { const uint8_t *p; size_t n; } vec_bytes;');
  L.push(
    'typedef struct { uint16_t has; const char *bn, *bu, *n, *u, *vs; uint64_t bt, v, s, t; bool vb; } vec_record; /* doubles as IEEE 754 bits */',
  );
  L.push(
    'typedef struct { const char *name; uint32_t boot, seq; uint64_t time; size_t nrecs; const vec_record *recs; vec_bytes body, frame, wire; } vec_reading;',
  );
  L.push(
    'typedef struct { const char *name; uint32_t boot, seq; uint64_t time; vec_bytes cid; uint8_t status; vec_bytes body, frame, wire; } vec_command_ack;',
  );
  L.push(
    'typedef struct { const char *name; vec_bytes id; const char *target, *actuator; uint8_t kind; int64_t vint; uint64_t vfloat; bool vbool; const char *vtext; uint64_t expires, issued, fence; bool has_fence; vec_bytes body, frame, wire; } vec_command;',
  );
  L.push(
    'typedef struct { const char *name; uint32_t boot, seq; uint8_t status; vec_bytes body, frame, wire; } vec_frame_ack;',
  );
  L.push('typedef struct { const char *name; vec_bytes decoded, wire; } vec_cobs;');
  L.push('typedef struct { const char *name; vec_bytes data; uint32_t crc; } vec_crc;', '');
  L.push(
    `#define VEC_DEVICE_ID ${cstr(v.device.id)}`,
    `#define VEC_DEVICE_SEED ${cbytes(v.device.seed)}`,
    `#define VEC_DEVICE_PK ${cbytes(v.device.publicKey)}`,
  );
  L.push(
    `#define VEC_GATEWAY_ID ${cstr(v.gateway.id)}`,
    `#define VEC_GATEWAY_SEED ${cbytes(v.gateway.seed)}`,
    `#define VEC_GATEWAY_PK ${cbytes(v.gateway.publicKey)}`,
    '',
  );
  v.readings.forEach((r, i) => {
    L.push(`static const vec_record vec_reading_${i}_recs[] = {`);
    for (const rec of r.records) {
      const has =
        HAS.filter(([k]) => rec[k] !== undefined)
          .map(([, b]) => `OUTPOST_SENML_${b}`)
          .join(' | ') || '0';
      L.push(
        `  {${has}, ${cstr(rec.bn)}, ${cstr(rec.bu)}, ${cstr(rec.n)}, ${cstr(rec.u)}, ${cstr(rec.vs)}, ${f64bits(rec.bt)}, ${f64bits(rec.v)}, ${f64bits(rec.s)}, ${f64bits(rec.t)}, ${rec.vb === true}},`,
      );
    }
    L.push('};');
  });
  L.push('static const vec_reading vec_readings[] = {');
  for (const [i, r] of v.readings.entries())
    L.push(
      `  {${cstr(r.name)}, ${r.boot}u, ${r.seq}u, ${r.time ?? 0}ull, ${r.records.length}, vec_reading_${i}_recs, {${cbytes(r.body)}}, {${cbytes(r.frame)}}, {${cbytes(r.wire)}}},`,
    );
  L.push('};', 'static const vec_command_ack vec_command_acks[] = {');
  for (const a of v.commandAcks)
    L.push(
      `  {${cstr(a.name)}, ${a.boot}u, ${a.seq}u, ${a.time ?? 0}ull, {${cbytes(a.commandId)}}, ${a.status}, {${cbytes(a.body)}}, {${cbytes(a.frame)}}, {${cbytes(a.wire)}}},`,
    );
  L.push('};', 'static const vec_command vec_commands[] = {');
  for (const c of v.commands) {
    const kind =
      typeof c.value === 'boolean'
        ? 'OUTPOST_VALUE_BOOL'
        : typeof c.value === 'string'
          ? 'OUTPOST_VALUE_TEXT'
          : Number.isInteger(c.value)
            ? 'OUTPOST_VALUE_INT'
            : 'OUTPOST_VALUE_FLOAT';
    const vint = typeof c.value === 'number' && Number.isInteger(c.value) ? `${c.value}ll` : '0';
    const vfloat = typeof c.value === 'number' && !Number.isInteger(c.value) ? f64bits(c.value) : '0';
    L.push(
      `  {${cstr(c.name)}, {${cbytes(c.id)}}, ${cstr(c.target)}, ${cstr(c.actuator)}, ${kind}, ${vint}, ${vfloat}, ${c.value === true}, ${typeof c.value === 'string' ? cstr(c.value) : 'NULL'}, ${c.expires}ull, ${c.issued}ull, ${c.fence ?? 0}ull, ${c.fence !== undefined}, {${cbytes(c.body)}}, {${cbytes(c.frame)}}, {${cbytes(c.wire)}}},`,
    );
  }
  L.push('};', 'static const vec_frame_ack vec_frame_acks[] = {');
  for (const a of v.frameAcks)
    L.push(
      `  {${cstr(a.name)}, ${a.boot}u, ${a.seq}u, ${a.status}, {${cbytes(a.body)}}, {${cbytes(a.frame)}}, {${cbytes(a.wire)}}},`,
    );
  L.push('};', 'static const vec_cobs vec_cobs_encode[] = {');
  for (const c of cobs.encode) L.push(`  {${cstr(c.name)}, {${cbytes(c.decoded)}}, {${cbytes(c.wire)}}},`);
  L.push('};', 'static const vec_crc vec_crcs[] = {');
  L.push(`  {"check value", {${cbytes(crc.check.data)}}, 0x${crc.check.crc}u},`);
  for (const c of crc.rfc3720)
    L.push(
      `  {${cstr(c.name)}, {${cbytes(c.data)}}, 0x${Buffer.from(c.wire, 'hex').readUInt32LE(0).toString(16).padStart(8, '0')}u},`,
    );
  L.push('};', '#define VEC_COUNT(a) (sizeof(a) / sizeof((a)[0]))', '#endif', '');
  return L.join('\n');
}

export const renderJson = (v: FirmwareVectors): string => `${JSON.stringify(v, null, 1)}\n`;

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const v = buildVectors();
  const files: [string, string][] = [
    [JSON_PATH, renderJson(v)],
    [HEADER_PATH, renderHeader(v)],
    [UPDATE_HEADER_PATH, renderUpdateHeader(v.update)],
  ];
  if (process.argv.includes('--check')) {
    const stale = files.filter(([p, text]) => {
      try {
        return readFileSync(p, 'utf8') !== text;
      } catch {
        return true;
      }
    });
    for (const [p] of stale) console.error(`stale: ${p}`);
    process.exit(stale.length ? 1 : 0);
  }
  for (const [p, text] of files) writeFileSync(p, text);
  console.log(`wrote ${files.map(([p]) => p).join(', ')}`);
}
