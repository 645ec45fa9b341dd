/**
 * Hostile and broken uplinks for gateway tests. Each helper returns bytes; a
 * test publishes them with `Fleet.inject(id, bytes)` or its own client.
 * None of them needs gateway code: they are what an attacker or a noisy link
 * could produce from the outside.
 */
import {
  decodeBody,
  decodeSign1,
  encodeBody,
  encodeCbor,
  HeaderLabel,
  COSE_SIGN1_TAG,
  type SenmlRecord,
  signBody,
  Tagged,
} from '../protocols/index.js';
import { createSigner, deviceKeysFromSeed, generateDeviceKeys, randomSeed } from './crypto.js';
import type { VirtualDevice } from './device.js';
import { Prng } from './sensors.js';

export interface ForgeOptions {
  readonly boot?: number;
  readonly seq?: number;
  /** Device time in ms (default now). */
  readonly time?: number;
  readonly records?: SenmlRecord[];
  /** Signing seed (default a fresh random one, i.e. surely not the device's). */
  readonly seed?: Uint8Array;
}

const defaultRecords = (id: string): SenmlRecord[] => [{ bn: `${id}:`, n: 'temp', u: 'Cel', v: 21 }];

/** A well-formed reading frame naming `deviceId` as kid but signed with another key. */
export function forgedFrame(deviceId: string, opts: ForgeOptions = {}): Uint8Array {
  return signBody(
    {
      type: 'reading',
      boot: opts.boot ?? 1,
      seq: opts.seq ?? 0,
      time: opts.time ?? Date.now(),
      records: opts.records ?? defaultRecords(deviceId),
    },
    deviceId,
    createSigner(opts.seed ?? randomSeed()),
  );
}

/** The bytes of a frame the gateway already acknowledged, re-sent verbatim (`index` into recent acks, -1 = last). */
export function replayFrame(device: VirtualDevice, index = -1): Uint8Array | undefined {
  const acked = device.recentlyAcked();
  return acked.at(index)?.bytes;
}

export interface UnknownDeviceFrame {
  readonly id: string;
  readonly publicKey: Uint8Array;
  readonly bytes: Uint8Array;
}

/** A correctly signed frame from an identity no registry has enrolled. */
export function unknownDeviceFrame(opts: ForgeOptions & { readonly id?: string } = {}): UnknownDeviceFrame {
  const keys = opts.seed ? deviceKeysFromSeed(opts.seed) : generateDeviceKeys();
  const id = opts.id ?? `unknown-${Buffer.from(keys.publicKey.subarray(0, 4)).toString('hex')}`;
  return { id, publicKey: keys.publicKey, bytes: forgedFrame(id, { ...opts, seed: keys.seed }) };
}

/** Random bytes (reproducible when `seed` is given). */
export function garbage(length = 64, seed?: number): Uint8Array {
  const rng = new Prng(seed ?? Math.floor(Math.random() * 2 ** 32));
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = rng.int(256);
  return out;
}

/**
 * A genuine frame whose body was altered after signing (seq + 1), keeping the
 * original signature: it decodes cleanly and must fail verification.
 */
export function tamperedFrame(frame: Uint8Array): Uint8Array {
  const s = decodeSign1(frame);
  if (!s.ok) throw new Error(`tamperedFrame needs a valid COSE_Sign1: ${s.error.message}`);
  const body = decodeBody(s.value.payload);
  if (!body.ok || body.value.type !== 'reading') throw new Error('tamperedFrame needs a reading frame');
  const payload = encodeBody({ ...body.value, seq: body.value.seq + 1 });
  const unprotected = new Map([[HeaderLabel.kid, s.value.kid]]);
  return encodeCbor(new Tagged(COSE_SIGN1_TAG, [s.value.protectedBytes, unprotected, payload, s.value.signature]));
}
