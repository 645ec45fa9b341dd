/**
 * Outpost message bodies: the CBOR payloads carried inside COSE_Sign1.
 *
 * All bodies are maps with small integer keys; key 0 is the message type.
 *   uplink   reading      {0:1, 1:boot, 2:seq, 3?:time_ms, 4:SenML pack}
 *   uplink   command ack  {0:3, 1:boot, 2:seq, 3?:time_ms, 8:command id, 15:status, 16?:detail}
 *   downlink command      {0:2, 8:id, 9:target, 10:actuator, 11:value, 12:expires_ms, 13:issued_ms, 14?:fence}
 *   downlink frame ack    {0:4, 1:boot, 2:seq, 15:status}   (serial/BLE; MQTT uses PUBACK)
 */
import { type CborKey, type CborValue, decodeCbor, encodeCbor, isBytes, isMap, isUint } from './cbor.js';
import { encodeSign1, type SignFn } from './cose.js';
import { deviceIdToKid } from './ids.js';
import { fail, ok, ProtocolUsageError, type Result } from './result.js';
import { MAX_RECORDS, packToCbor, readPack, type ResolvedRecord, resolvePack, type SenmlRecord } from './senml.js';

export const MessageType = { reading: 1, command: 2, commandAck: 3, frameAck: 4 } as const;
export const BodyKey = {
  type: 0,
  boot: 1,
  seq: 2,
  time: 3,
  senml: 4,
  commandId: 8,
  target: 9,
  actuator: 10,
  value: 11,
  expires: 12,
  issued: 13,
  fence: 14,
  status: 15,
  detail: 16,
} as const;

/** Status codes for acks (frame acks from the gateway, command acks from devices). */
export const AckStatus = {
  ok: 0,
  duplicate: 1,
  rejected: 2,
  badSignature: 3,
  expired: 4,
  replayed: 5,
  failed: 6,
  unknownActuator: 7,
  /** Command-ack: the command's fence is below the highest the device has seen for that actuator (another gateway holds the lease). */
  fenced: 8,
} as const;

export const MAX_COUNTER = 0xffffffff;
const MAX_TEXT = 64;

export interface ReadingBody {
  readonly type: 'reading';
  readonly boot: number;
  readonly seq: number;
  /** Device clock, ms since the Unix epoch. */
  readonly time?: number;
  readonly records: readonly SenmlRecord[];
}
export interface CommandAckBody {
  readonly type: 'command-ack';
  readonly boot: number;
  readonly seq: number;
  readonly time?: number;
  readonly commandId: Uint8Array;
  readonly status: number;
  readonly detail?: string;
}
export interface CommandBody {
  readonly type: 'command';
  readonly id: Uint8Array;
  readonly target: string;
  readonly actuator: string;
  readonly value: number | boolean | string;
  readonly expires: number;
  readonly issued: number;
  readonly fence?: number;
}
export interface FrameAckBody {
  readonly type: 'frame-ack';
  readonly boot: number;
  readonly seq: number;
  readonly status: number;
}
export type UplinkBody = ReadingBody | CommandAckBody;
export type DownlinkBody = CommandBody | FrameAckBody;
export type Body = UplinkBody | DownlinkBody;

const bodyLimits = { maxBytes: 3072, maxDepth: 4, maxItems: 2048, maxContainerLength: MAX_RECORDS };

type Reader = { get(k: number): CborValue; m: ReadonlyMap<CborKey, CborValue> };

function counter(r: Reader, key: number, name: string): Result<number> {
  const v = r.get(key);
  if (!isUint(v) || v > MAX_COUNTER) return fail('frame/bad-counter', `${name} must be an unsigned 32-bit integer`);
  return ok(v);
}
function optTime(r: Reader, key: number, name: string): Result<number | undefined> {
  const v = r.get(key);
  if (v === undefined) return ok(undefined);
  if (!isUint(v)) return fail('frame/bad-time', `${name} must be unsigned milliseconds since the epoch`);
  return ok(v);
}
function text(r: Reader, key: number, name: string): Result<string> {
  const v = r.get(key);
  if (typeof v !== 'string' || v.length === 0 || v.length > MAX_TEXT)
    return fail('frame/bad-field', `${name} must be text of 1..${MAX_TEXT} characters`);
  return ok(v);
}
/** boot, seq and the optional device time that every uplink body carries. */
function uplinkHead(r: Reader): Result<{ boot: number; seq: number; time?: number }> {
  const boot = counter(r, BodyKey.boot, 'boot');
  if (!boot.ok) return boot;
  const seq = counter(r, BodyKey.seq, 'seq');
  if (!seq.ok) return seq;
  const time = optTime(r, BodyKey.time, 'time');
  if (!time.ok) return time;
  return ok({ boot: boot.value, seq: seq.value, ...(time.value !== undefined && { time: time.value }) });
}

function commandId(r: Reader): Result<Uint8Array> {
  const v = r.get(BodyKey.commandId);
  if (!isBytes(v) || v.length < 4 || v.length > 32)
    return fail('frame/bad-command-id', 'command id must be 4..32 bytes');
  return ok(v);
}

/**
 * A reading's records resolved (RFC 8428 §4.6): `resolved` when a decode already gave them
 * (decodeBody's `out`), else resolved now; undefined when they do not resolve.
 */
export function readingRecords(
  body: ReadingBody,
  resolved?: readonly ResolvedRecord[],
): readonly ResolvedRecord[] | undefined {
  if (resolved) return resolved;
  const pack = resolvePack(body.records);
  return pack.ok ? pack.value : undefined;
}

/**
 * Decodes any Outpost body (after its signature has been checked). `out.resolved` receives a
 * reading's records as resolved to validate it (RFC 8428 §4.6), so a caller that needs them
 * (rules) does not resolve the pack a second time.
 */
export function decodeBody(bytes: Uint8Array, out?: { resolved?: ResolvedRecord[] }): Result<Body> {
  const c = decodeCbor(bytes, bodyLimits);
  if (!c.ok) return c;
  if (!isMap(c.value)) return fail('frame/not-map', 'body must be a CBOR map');
  const m = c.value;
  const r: Reader = { m, get: (k) => m.get(k) };
  const type = r.get(BodyKey.type);
  switch (type) {
    case MessageType.reading: {
      const head = uplinkHead(r);
      if (!head.ok) return head;
      const pack = readPack(r.get(BodyKey.senml));
      if (!pack.ok) return pack;
      // Resolve once to apply the pack-level rules (RFC 8428 §4.4 version, §4.5.1
      // names, one value per record): a reading that cannot be resolved must not
      // be accepted. The wire records are returned; callers resolve when they need to.
      const resolved = resolvePack(pack.value);
      if (!resolved.ok) return resolved;
      if (out) out.resolved = resolved.value;
      return ok({ type: 'reading', ...head.value, records: pack.value });
    }
    case MessageType.commandAck: {
      const head = uplinkHead(r);
      if (!head.ok) return head;
      const id = commandId(r);
      if (!id.ok) return id;
      const status = r.get(BodyKey.status);
      if (!isUint(status) || status > 255) return fail('frame/bad-status', 'status must be 0..255');
      const detail = r.get(BodyKey.detail);
      if (detail !== undefined && (typeof detail !== 'string' || detail.length > 256))
        return fail('frame/bad-field', 'detail must be text of at most 256 characters');
      return ok({
        type: 'command-ack',
        ...head.value,
        commandId: id.value,
        status,
        ...(detail !== undefined && { detail }),
      });
    }
    case MessageType.command: {
      const id = commandId(r);
      if (!id.ok) return id;
      const target = text(r, BodyKey.target, 'target');
      if (!target.ok) return target;
      const actuator = text(r, BodyKey.actuator, 'actuator');
      if (!actuator.ok) return actuator;
      const value = r.get(BodyKey.value);
      if (
        !(
          (typeof value === 'number' && Number.isFinite(value)) ||
          typeof value === 'boolean' ||
          (typeof value === 'string' && value.length <= MAX_TEXT)
        )
      ) {
        return fail('frame/bad-field', 'value must be a finite number, boolean or short text');
      }
      const expires = optTime(r, BodyKey.expires, 'expires');
      if (!expires.ok) return expires;
      const issued = optTime(r, BodyKey.issued, 'issued');
      if (!issued.ok) return issued;
      if (expires.value === undefined || issued.value === undefined)
        return fail('frame/bad-time', 'command needs issued and expires');
      const fence = r.get(BodyKey.fence);
      if (fence !== undefined && !isUint(fence)) return fail('frame/bad-field', 'fence must be an unsigned integer');
      return ok({
        type: 'command',
        id: id.value,
        target: target.value,
        actuator: actuator.value,
        value,
        expires: expires.value,
        issued: issued.value,
        ...(fence !== undefined && { fence }),
      });
    }
    case MessageType.frameAck: {
      const boot = counter(r, BodyKey.boot, 'boot');
      if (!boot.ok) return boot;
      const seq = counter(r, BodyKey.seq, 'seq');
      if (!seq.ok) return seq;
      const status = r.get(BodyKey.status);
      if (!isUint(status) || status > 255) return fail('frame/bad-status', 'status must be 0..255');
      return ok({ type: 'frame-ack', boot: boot.value, seq: seq.value, status });
    }
    default:
      return fail('frame/unknown-type', `unknown message type ${String(type)}`);
  }
}

function checkCounter(n: number, name: string): void {
  if (!Number.isInteger(n) || n < 0 || n > MAX_COUNTER)
    throw new ProtocolUsageError('frame/bad-counter', `${name} must be 0..${MAX_COUNTER}`);
}

/** Encodes a body map in key order. */
export function encodeBody(body: Body): Uint8Array {
  const m = new Map<number, unknown>();
  switch (body.type) {
    case 'reading':
      checkCounter(body.boot, 'boot');
      checkCounter(body.seq, 'seq');
      m.set(BodyKey.type, MessageType.reading).set(BodyKey.boot, body.boot).set(BodyKey.seq, body.seq);
      if (body.time !== undefined) m.set(BodyKey.time, body.time);
      m.set(BodyKey.senml, packToCbor(body.records));
      break;
    case 'command-ack':
      checkCounter(body.boot, 'boot');
      checkCounter(body.seq, 'seq');
      m.set(BodyKey.type, MessageType.commandAck).set(BodyKey.boot, body.boot).set(BodyKey.seq, body.seq);
      if (body.time !== undefined) m.set(BodyKey.time, body.time);
      m.set(BodyKey.commandId, body.commandId).set(BodyKey.status, body.status);
      if (body.detail !== undefined) m.set(BodyKey.detail, body.detail);
      break;
    case 'command':
      m.set(BodyKey.type, MessageType.command)
        .set(BodyKey.commandId, body.id)
        .set(BodyKey.target, body.target)
        .set(BodyKey.actuator, body.actuator)
        .set(BodyKey.value, body.value)
        .set(BodyKey.expires, body.expires)
        .set(BodyKey.issued, body.issued);
      if (body.fence !== undefined) m.set(BodyKey.fence, body.fence);
      break;
    case 'frame-ack':
      checkCounter(body.boot, 'boot');
      checkCounter(body.seq, 'seq');
      m.set(BodyKey.type, MessageType.frameAck)
        .set(BodyKey.boot, body.boot)
        .set(BodyKey.seq, body.seq)
        .set(BodyKey.status, body.status);
      break;
  }
  return encodeCbor(m);
}

/** Encodes and signs a body as a COSE_Sign1 frame from `signerId` (device or gateway id). */
export function signBody(body: Body, signerId: string, sign: SignFn): Uint8Array {
  return encodeSign1({ kid: deviceIdToKid(signerId), payload: encodeBody(body) }, sign);
}
