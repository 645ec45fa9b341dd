/**
 * Shared vectors for the C update receiver (hardware/firmware/src/outpost_update.c): a
 * release-signed manifest, the offer and the chunks of a small image as the gateway sends
 * them (protocols/firmware-manifest.ts, protocols/firmware-transfer.ts), manifests a device
 * must refuse with the code verifyManifest / manifestRefusal give, and device-signed reports.
 * Part of firmware-vectors.json ("update"); rendered as hardware/firmware/test/update_vectors.h.
 */
import { createHash } from 'node:crypto';
import { publicKeyFromSeed, signEd25519 } from '../../gateway/crypto/ed25519.js';
import {
  encodeManifest,
  type FirmwareManifest,
  manifestRefusal,
  releaseKeyId,
  verifyManifest,
} from '../../protocols/firmware-manifest.js';
import {
  encodeChunk,
  encodeOffer,
  encodeReport,
  UPDATE_STATES,
  type UpdateReport,
} from '../../protocols/firmware-transfer.js';
import { deviceIdToKid, encodeCbor, encodeSign1, toHex } from '../../protocols/index.js';
import { verifyEd25519 } from '../../gateway/crypto/ed25519.js';

const seq32 = (start: number, step: number): Uint8Array =>
  Uint8Array.from({ length: 32 }, (_, i) => (start + i * step) & 0xff);
const RELEASE_SEED = seq32(90, 11);
const OTHER_SEED = seq32(17, 3);
const DEVICE = { model: 'env-1', version: '1.2.0', slot: 1 } as const;
const CHUNK = 512;
const IMAGE = Uint8Array.from({ length: 2500 }, (_, i) => (i * 37 + (i >> 8)) & 0xff);
const TAMPERED_CHUNK = 2;

const releasePk = publicKeyFromSeed(RELEASE_SEED);
const otherPk = publicKeyFromSeed(OTHER_SEED);
const releaseSign = (m: Uint8Array) => signEd25519(RELEASE_SEED, m);
const otherSign = (m: Uint8Array) => signEd25519(OTHER_SEED, m);
const digest = new Uint8Array(createHash('sha256').update(IMAGE).digest());
const base: FirmwareManifest = {
  model: DEVICE.model,
  version: '1.3.0',
  digest,
  size: IMAGE.length,
  minVersion: '1.0.0',
  slot: DEVICE.slot,
  issued: 1_764_000_000_000,
};

/** A payload encodeManifest would refuse to write, signed anyway by the release key. */
function rawManifest(fields: [number, unknown][]): Uint8Array {
  return encodeSign1({ kid: releaseKeyId(releasePk), payload: encodeCbor(new Map(fields)) }, releaseSign);
}
const baseFields = (): [number, unknown][] => [
  [0, 16],
  [1, base.model],
  [2, base.version],
  [3, [-16, digest]],
  [4, base.size],
  [5, base.minVersion],
  [6, base.slot],
  [7, base.issued],
];

function flip(bytes: Uint8Array, at: number): Uint8Array {
  const b = bytes.slice();
  b[at < 0 ? b.length + at : at]! ^= 0x01;
  return b;
}

function manifests(): { name: string; manifest: Uint8Array }[] {
  const valid = encodeManifest(base, releasePk, releaseSign);
  const payloadEnd = valid.length - 66; // payload, then 58 40 and the signature
  const longKidHead = new Uint8Array([...valid.subarray(0, 8), 0x58, 0x08, ...valid.subarray(9)]);
  return [
    { name: 'valid', manifest: valid },
    { name: 'signed by another release key', manifest: encodeManifest(base, otherPk, otherSign) },
    { name: 'release kid, signed by another key', manifest: encodeManifest(base, releasePk, otherSign) },
    { name: 'tampered payload (digest byte)', manifest: flip(valid, payloadEnd - 30) },
    { name: 'tampered signature', manifest: flip(valid, -1) },
    { name: 'kid head not in preferred encoding', manifest: longKidHead },
    { name: 'wrong model', manifest: encodeManifest({ ...base, model: 'env-2' }, releasePk, releaseSign) },
    {
      name: 'same version (downgrade)',
      manifest: encodeManifest({ ...base, version: '1.2.0' }, releasePk, releaseSign),
    },
    {
      name: 'older version (downgrade)',
      manifest: encodeManifest({ ...base, version: '1.1.9' }, releasePk, releaseSign),
    },
    {
      name: 'running below the minimum',
      manifest: encodeManifest({ ...base, version: '2.0.0', minVersion: '1.2.1' }, releasePk, releaseSign),
    },
    { name: 'other slot', manifest: encodeManifest({ ...base, slot: 0 }, releasePk, releaseSign) },
    { name: 'unknown field', manifest: rawManifest([...baseFields(), [8, 1]]) },
    {
      name: 'digest algorithm not SHA-256',
      manifest: rawManifest(baseFields().map(([k, v]) => [k, k === 3 ? [-44, digest] : v])),
    },
    {
      name: 'minimum above the version',
      manifest: rawManifest(baseFields().map(([k, v]) => [k, k === 5 ? '1.4.0' : v])),
    },
    {
      name: 'version with a leading zero',
      manifest: rawManifest(baseFields().map(([k, v]) => [k, k === 2 ? '1.03.0' : v])),
    },
    { name: 'not a manifest (type 17)', manifest: rawManifest(baseFields().map(([k, v]) => [k, k === 0 ? 17 : v])) },
  ];
}

/** What firmware-sim/update.ts reports for an offer of this manifest (device running 1.2.0): the code, or "ok". */
function reasonFor(bytes: Uint8Array): string {
  const v = verifyManifest(bytes, [releasePk], (k, msg, sig) => verifyEd25519(k, msg, sig));
  if (!v.ok) return v.error.code.replace('firmware/', '');
  return manifestRefusal(v.value.manifest, DEVICE)?.code ?? 'ok';
}

export function buildUpdateVectors(deviceId: string, deviceSeed: Uint8Array) {
  const chunks: string[] = [];
  for (let off = 0; off < IMAGE.length; off += CHUNK)
    chunks.push(toHex(encodeChunk({ digest, offset: off, data: IMAGE.subarray(off, off + CHUNK) })));
  const at = TAMPERED_CHUNK * CHUNK;
  const tampered = encodeChunk({ digest, offset: at, data: flip(IMAGE.subarray(at, at + CHUNK), 100) });
  const reports: (Omit<UpdateReport, 'digest'> & { name: string; digest: boolean })[] = [
    {
      name: 'idle',
      boot: 1,
      n: 1,
      time: 0,
      state: 'idle',
      digest: false,
      offset: 0,
      window: 8,
      chunkSize: CHUNK,
      running: '1.2.0',
    },
    {
      name: 'offered',
      boot: 2,
      n: 2,
      time: 1_764_000_000_500,
      state: 'offered',
      digest: true,
      offset: 0,
      window: 8,
      chunkSize: CHUNK,
      running: '1.2.0',
    },
    {
      name: 'downloading, resume',
      boot: 3,
      n: 70_000,
      time: 1_764_000_100_000,
      state: 'downloading',
      digest: true,
      offset: 1024,
      window: 4,
      chunkSize: CHUNK,
      running: '1.2.0',
      reason: 'resume',
    },
    {
      name: 'failed with reason and detail',
      boot: 4_294_967_295,
      n: 5,
      time: 1,
      state: 'failed',
      digest: true,
      offset: 0,
      window: 8,
      chunkSize: 32_768,
      running: '99999.0.12',
      reason: 'unknown-key',
      detail: 'not signed by a trusted release key',
    },
  ];
  const sign = (m: Uint8Array) => signEd25519(deviceSeed, m);
  return {
    release: { seed: toHex(RELEASE_SEED), publicKey: toHex(releasePk), kid: toHex(releaseKeyId(releasePk)) },
    otherKey: { seed: toHex(OTHER_SEED), publicKey: toHex(otherPk) },
    device: DEVICE,
    image: toHex(IMAGE),
    digest: toHex(digest),
    chunkSize: CHUNK,
    offer: toHex(encodeOffer({ manifest: encodeManifest(base, releasePk, releaseSign), rollout: 'r-1' })),
    chunks,
    tamperedChunk: { index: TAMPERED_CHUNK, chunk: toHex(tampered) },
    badCrcChunk: toHex(flip(encodeChunk({ digest, offset: 0, data: IMAGE.subarray(0, CHUNK) }), 60)),
    manifests: manifests().map((m) => ({ name: m.name, manifest: toHex(m.manifest), reason: reasonFor(m.manifest) })),
    reports: reports.map((r) => {
      const { name, digest: has, ...rest } = r;
      const payload = encodeReport({ ...rest, digest: has ? digest : null });
      return { ...r, frame: toHex(encodeSign1({ kid: deviceIdToKid(deviceId), payload }, sign)) };
    }),
  };
}
export type UpdateVectors = ReturnType<typeof buildUpdateVectors>;

const cstr = (s: string | undefined): string => (s === undefined ? 'NULL' : JSON.stringify(s));
const cbytes = (hex: string): string => `(const uint8_t *)"${hex.replace(/../g, '\\x$&')}", ${hex.length / 2}`;

export function renderUpdateHeader(u: UpdateVectors): string {
  const L = [
    '/* GENERATED by test/vectors/generate-firmware-vectors.ts from test/vectors/firmware-vectors.json',
    ' * ("update"; test/vectors/firmware-update-vectors.ts). Do not edit. */',
    '#ifndef OUTPOST_TEST_UPDATE_VECTORS_H',
    '#define OUTPOST_TEST_UPDATE_VECTORS_H',
    '#include "vectors.h"',
    '',
    'typedef struct { const char *name; vec_bytes manifest; const char *reason; } vec_fw_manifest;',
    'typedef struct { const char *name; uint32_t boot, n; uint64_t time; uint8_t state; bool has_digest; uint32_t offset; uint16_t window, chunk_size; const char *running, *reason, *detail; vec_bytes frame; } vec_fw_report;',
    '',
    `#define VEC_FW_RELEASE_SEED ${cbytes(u.release.seed)}`,
    `#define VEC_FW_RELEASE_PK ${cbytes(u.release.publicKey)}`,
    `#define VEC_FW_RELEASE_KID ${cbytes(u.release.kid)}`,
    `#define VEC_FW_OTHER_SEED ${cbytes(u.otherKey.seed)}`,
    `#define VEC_FW_MODEL ${cstr(u.device.model)}`,
    `#define VEC_FW_RUNNING ${cstr(u.device.version)}`,
    `#define VEC_FW_SLOT ${u.device.slot}`,
    `#define VEC_FW_CHUNK_SIZE ${u.chunkSize}`,
    `#define VEC_FW_DIGEST ${cbytes(u.digest)}`,
    `#define VEC_FW_IMAGE ${cbytes(u.image)}`,
    `#define VEC_FW_OFFER ${cbytes(u.offer)}`,
    `#define VEC_FW_TAMPERED_INDEX ${u.tamperedChunk.index}`,
    `#define VEC_FW_TAMPERED_CHUNK ${cbytes(u.tamperedChunk.chunk)}`,
    `#define VEC_FW_BAD_CRC_CHUNK ${cbytes(u.badCrcChunk)}`,
    'static const vec_bytes vec_fw_chunks[] = {',
    ...u.chunks.map((c) => `  {${cbytes(c)}},`),
    '};',
    'static const vec_fw_manifest vec_fw_manifests[] = {',
    ...u.manifests.map((m) => `  {${cstr(m.name)}, {${cbytes(m.manifest)}}, ${cstr(m.reason)}},`),
    '};',
    'static const vec_fw_report vec_fw_reports[] = {',
    ...u.reports.map(
      (r) =>
        `  {${cstr(r.name)}, ${r.boot}u, ${r.n}u, ${r.time}ull, ${UPDATE_STATES.indexOf(r.state)}, ${r.digest}, ${r.offset}u, ${r.window}, ${r.chunkSize}, ${cstr(r.running)}, ${cstr(r.reason)}, ${cstr(r.detail)}, {${cbytes(r.frame)}}},`,
    ),
    '};',
    '#endif',
    '',
  ];
  return L.join('\n');
}
