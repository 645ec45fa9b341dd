/**
 * Firmware transfer messages (gateway/firmware/README.md, "Transfer").
 *
 * Down (gateway → device, plain CBOR: the manifest carries the release signature and the
 * image its digest, so nothing here needs the gateway's):
 *   offer  {0: 17, 1: manifest (COSE_Sign1 bytes), 2: rollout id}
 *   chunk  {0: 18, 1: image digest, 2: offset, 3: data, 4: CRC-32C of data}
 * Up (device → gateway), the payload of a COSE_Sign1 signed by the device (cose.ts):
 *   report {0: 19, 1: boot, 2: n (report counter), 3: time ms, 4: state, 5: digest | null,
 *           6: offset, 7: window (chunks wanted beyond offset), 8: chunk size,
 *           9: running version, 10?: reason code, 11?: detail}
 * A report in state `downloading` is also the request for chunks: the gateway sends those
 * in [offset, offset + window × chunk size) it has not sent yet, so several are in flight;
 * a report whose offset is below what was sent (a reconnect, a reboot) rewinds the sender.
 *
 * On serial and BLE the same messages are frames of the byte stream (serial-framing.ts),
 * told apart from the other frames by their first bytes (`isFirmwareDown`,
 * `isFirmwareReport`): an offer or chunk is a bare CBOR map whose key 0 is 17 or 18, where
 * every other downlink frame is a COSE_Sign1; a report is a COSE_Sign1 whose payload's key 0
 * is 19. On BLE a chunk is at most what fits 16 ATT payloads once framed (`bleChunkBytes`),
 * and at most BLE_INFLIGHT_BYTES of framed chunks are in flight (`bleWindow(mtu)` chunks).
 */
import { cborHeadBytes, writeCborHead } from './cbor-head.js';
import { attPayload } from './ble.js';
import { type CborValue, decodeCbor, encodeCbor, isBytes, isMap, isUint } from './cbor.js';
import { decodeSign1 } from './cose.js';
import { crc32c } from './crc32c.js';
import { isFirmwareVersion, MAX_MANIFEST_BYTES } from './firmware-manifest.js';
import { fail, ok, ProtocolUsageError, type Result } from './result.js';
import { serialFrameMaxWireLength } from './serial-framing.js';

const FirmwareMessage = { offer: 17, chunk: 18, report: 19 } as const;

/** Outcomes a device reports, in the order an update goes through them. */
export const UPDATE_STATES = [
  'idle',
  'offered',
  'downloading',
  'verified',
  'installing',
  'confirmed',
  'rolled-back',
  'failed',
] as const;
export type UpdateState = (typeof UPDATE_STATES)[number];
/** A state no further report changes for this image. */
export const isFinalState = (s: UpdateState): boolean => s === 'confirmed' || s === 'rolled-back' || s === 'failed';

/** Largest chunk on any transport; a device asks for less (its buffer, the link's MTU). */
export const MAX_CHUNK_BYTES = 32 * 1024;
const MAX_WINDOW = 64;
const MAX_ROLLOUT_ID = 64;
const MAX_DETAIL = 200;
const MAX_CODE = 32;

/** CBOR bytes of a chunk message around its data, at most (offsets below 2^32). */
export const CHUNK_OVERHEAD = 58;
/** ATT payloads one framed chunk may span on BLE. */
const BLE_CHUNK_PAYLOADS = 16;
/**
 * Bytes of framed chunks in flight toward one BLE device at most: what its receive buffer
 * holds, 128 ATT payloads at MTU 247 (31 232 bytes, 8 chunks of 3 825). Sized for an
 * nRF52840-class device (256 KB of RAM: 12 % of it; an nRF52833 has 128 KB). A device with less
 * asks for a smaller window in its reports and is served that; the gateway never sends more
 * than this. It was 64 payloads (15 616 bytes, 4 chunks at MTU 247), and with a report every
 * few chunks the signed reports were a third of a transfer's CPU (bench/README.md, "BLE
 * firmware transfer at MTU 247: fewer reports"). Counted in bytes, not payloads, so a small
 * MTU does not shrink it (64 payloads at MTU 23 were 1 280 bytes, 4 chunks of 255, and each
 * half window waited for a report's round trip: "Device-side storage in the transfer benches").
 */
export const BLE_INFLIGHT_BYTES = 128 * attPayload(247);
/**
 * The window a BLE device asks for: the chunks (each at most 16 ATT payloads framed) that fit
 * BLE_INFLIGHT_BYTES, at most the 64 a report may name; 8 at MTU 247, 64 at 23.
 */
export const bleWindow = (mtu: number): number =>
  Math.min(MAX_WINDOW, Math.max(1, Math.floor(BLE_INFLIGHT_BYTES / (BLE_CHUNK_PAYLOADS * attPayload(mtu)))));

/** The largest chunk whose message, framed for a byte stream, is at most `wireBytes`. */
function chunkForWire(wireBytes: number): number {
  let n = Math.max(1, wireBytes - CHUNK_OVERHEAD);
  while (n > 1 && serialFrameMaxWireLength(n + CHUNK_OVERHEAD) > wireBytes) n--;
  return Math.min(n, MAX_CHUNK_BYTES);
}

const bleChunks = new Map<number, number>();
/**
 * The chunk size for a BLE link of this ATT MTU: 23 → 255 bytes, 247 → 3 825 bytes. Kept per
 * MTU: the gateway asks for it with every report, and the search costs a few thousand steps.
 */
export function bleChunkBytes(mtu: number): number {
  let n = bleChunks.get(mtu);
  if (n === undefined) {
    n = chunkForWire(BLE_CHUNK_PAYLOADS * attPayload(mtu));
    if (bleChunks.size < 256) bleChunks.set(mtu, n);
  }
  return n;
}

/** Whether a byte-stream frame is a firmware offer or chunk (a bare CBOR map, key 0 = 17 or 18). */
export function isFirmwareDown(frame: Uint8Array): boolean {
  return frame.length > 3 && (frame[0]! & 0xe0) === 0xa0 && frame[1] === 0 && (frame[2] === 17 || frame[2] === 18);
}

/** Whether a byte-stream frame is a COSE_Sign1 carrying a firmware report (payload key 0 = 19). */
export function isFirmwareReport(frame: Uint8Array): boolean {
  const s = decodeSign1(frame, { maxBytes: 1024 });
  if (!s.ok) return false;
  const p = s.value.payload;
  return p.length > 3 && (p[0]! & 0xe0) === 0xa0 && p[1] === 0 && p[2] === 19;
}

export interface OfferMessage {
  readonly type: 'offer';
  readonly manifest: Uint8Array;
  readonly rollout: string;
}
export interface ChunkMessage {
  readonly type: 'chunk';
  readonly digest: Uint8Array;
  readonly offset: number;
  readonly data: Uint8Array;
}
export type DownMessage = OfferMessage | ChunkMessage;

export interface UpdateReport {
  readonly boot: number;
  /** Counts this device's reports (kept across reboots): a replayed report is not newer. */
  readonly n: number;
  readonly time: number;
  readonly state: UpdateState;
  /** The image this report is about (null when idle). */
  readonly digest: Uint8Array | null;
  readonly offset: number;
  readonly window: number;
  readonly chunkSize: number;
  readonly running: string;
  readonly reason?: string;
  readonly detail?: string;
}

export function encodeOffer(o: Omit<OfferMessage, 'type'>): Uint8Array {
  if (o.rollout.length === 0 || o.rollout.length > MAX_ROLLOUT_ID)
    throw new ProtocolUsageError('firmware/bad-offer', `rollout id must be 1..${MAX_ROLLOUT_ID} characters`);
  return encodeCbor(
    new Map<number, unknown>([
      [0, FirmwareMessage.offer],
      [1, o.manifest],
      [2, o.rollout],
    ]),
  );
}

/**
 * `{0: 18, 1: digest, 2: offset, 3: data, 4: CRC-32C(data)}`, the bytes encodeCbor writes for
 * that map (definite lengths, shortest heads, keys in this order), written straight into one
 * buffer of exactly its size: a chunk is the one message sent thousands of times a rollout,
 * and going through a Map and the general encoder cost a Map, its copy and a slice of the
 * encoder's shared buffer for each (bench/firmware-rollout.ts).
 */
export function encodeChunk(c: Omit<ChunkMessage, 'type'>): Uint8Array {
  if (c.data.length === 0 || c.data.length > MAX_CHUNK_BYTES)
    throw new ProtocolUsageError('firmware/bad-chunk', `chunk must be 1..${MAX_CHUNK_BYTES} bytes`);
  if (!Number.isSafeInteger(c.offset) || c.offset < 0 || c.offset > 0xffffffff)
    throw new ProtocolUsageError('firmware/bad-chunk', 'chunk offset must be an unsigned 32-bit integer');
  const crc = crc32c(c.data);
  // Each field: its key (1 byte), its head, its bytes; 3 bytes of map(5) and `0: 18` before them.
  const digest = 1 + cborHeadBytes(c.digest.length) + c.digest.length;
  const data = 1 + cborHeadBytes(c.data.length) + c.data.length;
  const size = 3 + digest + 1 + cborHeadBytes(c.offset) + data + 1 + cborHeadBytes(crc);
  const out = new Uint8Array(size);
  out[0] = 0xa5;
  out[1] = 0;
  out[2] = FirmwareMessage.chunk;
  out[3] = 1;
  let at = writeCborHead(out, 4, 2, c.digest.length);
  out.set(c.digest, at);
  at += c.digest.length;
  out[at++] = 2;
  at = writeCborHead(out, at, 0, c.offset);
  out[at++] = 3;
  at = writeCborHead(out, at, 2, c.data.length);
  out.set(c.data, at);
  at += c.data.length;
  out[at++] = 4;
  writeCborHead(out, at, 0, crc);
  return out;
}

const downLimits = { maxBytes: MAX_CHUNK_BYTES + 128, maxDepth: 1, maxItems: 16, maxContainerLength: 8 };

/** Decodes a gateway → device message; a chunk whose CRC does not match is `firmware/bad-crc`. */
export function decodeDown(bytes: Uint8Array): Result<DownMessage> {
  const d = decodeCbor(bytes, downLimits);
  if (!d.ok) return d;
  const m = d.value;
  if (!isMap(m)) return fail('firmware/bad-message', 'message must be a map');
  const type = m.get(0);
  if (type === FirmwareMessage.offer) {
    const manifest = m.get(1);
    const rollout = m.get(2);
    if (!isBytes(manifest ?? null) || (manifest as Uint8Array).length > MAX_MANIFEST_BYTES)
      return fail('firmware/bad-offer', `manifest must be bytes of at most ${MAX_MANIFEST_BYTES}`);
    if (typeof rollout !== 'string' || rollout.length === 0 || rollout.length > MAX_ROLLOUT_ID)
      return fail('firmware/bad-offer', 'rollout id must be 1..64 characters');
    return ok({ type: 'offer', manifest: manifest as Uint8Array, rollout });
  }
  if (type === FirmwareMessage.chunk) {
    const digest = m.get(1);
    const offset = m.get(2);
    const data = m.get(3);
    const crc = m.get(4);
    if (!isBytes(digest ?? null) || (digest as Uint8Array).length !== 32)
      return fail('firmware/bad-chunk', 'digest must be 32 bytes');
    if (offset === undefined || !isUint(offset) || !Number.isSafeInteger(offset))
      return fail('firmware/bad-chunk', 'offset must be an unsigned integer');
    if (!isBytes(data ?? null) || (data as Uint8Array).length === 0)
      return fail('firmware/bad-chunk', 'data must be non-empty bytes');
    if (crc === undefined || !isUint(crc) || crc > 0xffffffff)
      return fail('firmware/bad-chunk', 'crc must be a uint32');
    if (crc32c(data as Uint8Array) !== crc) return fail('firmware/bad-crc', 'chunk CRC-32C does not match its data');
    return ok({ type: 'chunk', digest: digest as Uint8Array, offset, data: data as Uint8Array });
  }
  return fail('firmware/bad-message', `unknown message type ${String(type)}`);
}

export function encodeReport(r: UpdateReport): Uint8Array {
  const m = new Map<number, unknown>([
    [0, FirmwareMessage.report],
    [1, r.boot],
    [2, r.n],
    [3, r.time],
    [4, UPDATE_STATES.indexOf(r.state)],
    [5, r.digest],
    [6, r.offset],
    [7, r.window],
    [8, r.chunkSize],
    [9, r.running],
  ]);
  if (r.reason !== undefined) m.set(10, r.reason.slice(0, MAX_CODE));
  if (r.detail !== undefined) m.set(11, r.detail.slice(0, MAX_DETAIL));
  return encodeCbor(m);
}

const uint = (v: CborValue | undefined): v is number => v !== undefined && isUint(v) && Number.isSafeInteger(v);

/** Decodes a report payload (the device's signature is checked by the caller first). */
export function decodeReport(bytes: Uint8Array): Result<UpdateReport> {
  const d = decodeCbor(bytes, { maxBytes: 512, maxDepth: 1, maxItems: 32, maxContainerLength: 16 });
  if (!d.ok) return d;
  const m = d.value;
  if (!isMap(m) || m.get(0) !== FirmwareMessage.report) return fail('firmware/bad-report', 'not an update report');
  const [boot, n, time, state, digest, offset, window, chunkSize, running, reason, detail] = [
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
  ].map((k) => m.get(k));
  if (!uint(boot) || !uint(n) || !uint(time) || !uint(offset) || !uint(window) || !uint(chunkSize))
    return fail('firmware/bad-report', 'boot, n, time, offset, window and chunk size must be unsigned integers');
  if (!uint(state) || state >= UPDATE_STATES.length) return fail('firmware/bad-report', 'unknown state');
  if (digest !== null && !(isBytes(digest ?? 0) && (digest as Uint8Array).length === 32))
    return fail('firmware/bad-report', 'digest must be 32 bytes or null');
  if (typeof running !== 'string' || !isFirmwareVersion(running))
    return fail('firmware/bad-report', 'running version must be MAJOR.MINOR.PATCH');
  if (window > MAX_WINDOW || chunkSize > MAX_CHUNK_BYTES)
    return fail('firmware/bad-report', `window at most ${MAX_WINDOW}, chunk size at most ${MAX_CHUNK_BYTES}`);
  if (reason !== undefined && (typeof reason !== 'string' || reason.length > MAX_CODE))
    return fail('firmware/bad-report', 'reason must be a short code');
  if (detail !== undefined && (typeof detail !== 'string' || detail.length > MAX_DETAIL))
    return fail('firmware/bad-report', 'detail too long');
  return ok({
    boot,
    n,
    time,
    state: UPDATE_STATES[state]!,
    digest: (digest as Uint8Array | null) ?? null,
    offset,
    window,
    chunkSize,
    running,
    ...(reason !== undefined && { reason: reason as string }),
    ...(detail !== undefined && { detail: detail as string }),
  });
}
