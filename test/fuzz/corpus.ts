/**
 * Valid inputs for the fuzz campaign, made by the real encoders and signers (plus the
 * RFC vectors already in test/vectors), so mutations start from what peers really send.
 */
import { readFileSync } from 'node:fs';
import { publicKeyFromSeed, signEd25519 } from '../../gateway/crypto/ed25519.js';
import {
  type Block,
  type Body,
  cobsEncode,
  encodeAuthMessage,
  encodeBody,
  encodeSerialFrame,
  encodeSyncMessage,
  encodeSenml,
  publicKeyToDidKey,
  type SenmlRecord,
  sha256,
  signBlock,
  signBody,
  type SignedBlock,
} from '../../protocols/index.js';

const vectors = (name: string): unknown =>
  JSON.parse(readFileSync(new URL(`../vectors/${name}.json`, import.meta.url), 'utf8'));
const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'hex'));
const seed = (n: number): Uint8Array => sha256(new TextEncoder().encode(`outpost-fuzz-${n}`));

export const deviceSeed = seed(1);
export const devicePublicKey = publicKeyFromSeed(deviceSeed);
export const gatewaySeed = seed(2);
export const gatewayPublicKey = publicKeyFromSeed(gatewaySeed);
const sign = (s: Uint8Array) => (m: Uint8Array) => signEd25519(s, m);

const records: SenmlRecord[][] = [
  [
    { bn: 'fz-1:', bt: 1_760_000_000, n: 'temp', u: 'Cel', v: 21.5 },
    { n: 'hum', u: '%RH', v: 40 },
  ],
  [
    { n: 'door', vb: true },
    { n: 'label', vs: 'open' },
    { n: 'blob', vd: Uint8Array.of(1, 2, 3) },
  ],
  [
    { bn: 'fz-1:', bu: 'W', bv: 10, n: 'p', v: 1.25, t: -5 },
    { n: 'e', s: 1234.5, ut: 60 },
  ],
];

export const bodies: Body[] = [
  ...records.map(
    (r, i): Body => ({ type: 'reading', boot: 1 + i, seq: 7 * i, time: 1_760_000_000_000 + i, records: r }),
  ),
  { type: 'frame-ack', boot: 3, seq: 99, status: 0 },
  {
    type: 'command',
    id: Uint8Array.of(1, 2, 3, 4, 5),
    target: 'fz-1',
    actuator: 'relay',
    value: true,
    expires: 1_760_000_100_000,
    issued: 1_760_000_000_000,
    fence: 4,
  },
  { type: 'command-ack', boot: 2, seq: 5, commandId: Uint8Array.of(9, 9, 9, 9), status: 1, detail: 'busy' },
];

export const bodyBytes: Uint8Array[] = bodies.map(encodeBody);
/** COSE_Sign1 frames signed by a device (uplinks) or the gateway (downlinks). */
export const frames: Uint8Array[] = bodies.map((b) =>
  signBody(
    b,
    b.type === 'frame-ack' || b.type === 'command' ? 'gw-fz' : 'fz-1',
    sign(b.type === 'frame-ack' || b.type === 'command' ? gatewaySeed : deviceSeed),
  ),
);

const cose = vectors('cose-wg-examples') as Record<string, { output_cbor_hex?: string }>;
export const coseVectors: Uint8Array[] = Object.values(cose).flatMap((v) =>
  v.output_cbor_hex ? [hex(v.output_cbor_hex)] : [],
);

export const cborVectors: Uint8Array[] = (vectors('rfc8949-appendix-a') as { cases: { hex: string }[] }).cases.map(
  (c) => hex(c.hex),
);

export const senmlPacks: Uint8Array[] = records.map(encodeSenml);

export const cobsWire: Uint8Array[] = [
  ...(vectors('cobs') as { encode: { wire: string }[] }).encode.map((c) => hex(c.wire)),
  ...frames.map(cobsEncode),
];

/** Serial line bytes: several framed frames back to back. */
export const serialStreams: Uint8Array[] = [
  frames.map(encodeSerialFrame),
  [encodeSerialFrame(frames[0]!), Uint8Array.of(0), encodeSerialFrame(frames[3]!)],
].map((parts) => Buffer.concat(parts));

export const didKeys: string[] = [
  ...(vectors('did-key-ed25519') as { seeded: { did: string }[] }).seeded.map((d) => d.did),
  publicKeyToDidKey(devicePublicKey),
];
export const keyTexts: string[] = [
  ...didKeys,
  Buffer.from(devicePublicKey).toString('hex'),
  Buffer.from(gatewayPublicKey).toString('hex'),
];

export const topicTexts: string[] = [
  'outpost/v1/dev/fz-1/up',
  'outpost/v1/dev/fz-1/cmd',
  'outpost/v1/gw/gw-fz/status',
  'outpost/v1/sync/ab/cd/i',
];

const header = (seq: number, prev: Uint8Array | null) => ({
  author: gatewayPublicKey,
  stream: 'default',
  seq,
  lamport: seq + 1,
  prev,
  parents: [],
  policy: 'default',
});

/** A small valid chain: an enrolment block, then two frames blocks (hash-linked, gateway-signed). */
export function chain(): SignedBlock[] {
  const out: SignedBlock[] = [];
  const enrol: Block = {
    ...header(0, null),
    kind: 'enrolment',
    body: { device: 'fz-1', publicKey: devicePublicKey, enrolledAt: 1 },
  };
  out.push(signBlock(enrol, sign(gatewaySeed)));
  for (let i = 1; i <= 2; i++) {
    const body = frames
      .slice(0, 3)
      .map((f, k) => ({ frame: f, rxTime: 1_760_000_000_000 + i * 10 + k, transport: 'mqtt' }));
    out.push(signBlock({ ...header(i, out[i - 1]!.hash), kind: 'frames', body } as Block, sign(gatewaySeed)));
  }
  return out;
}

export const blocks = chain();
export const blockEnvelopes = blocks.map((b) => b.envelope);
export const blockBytes = blocks.map((b) => b.bytes);

export const syncMessages: Uint8Array[] = [
  encodeSyncMessage({ type: 'equal' }),
  encodeSyncMessage({ type: 'differ' }),
  encodeSyncMessage({ type: 'check', digest: sha256(Uint8Array.of(1)) }),
  encodeSyncMessage({ type: 'done', count: 3 }),
  encodeSyncMessage({
    type: 'hello',
    digest: sha256(Uint8Array.of(2)),
    vector: [
      {
        author: gatewayPublicKey,
        stream: 'default',
        low: 0,
        high: 2,
        count: 3,
        heads: [blocks[2]!.hash],
        kept: new Uint8Array(0),
      },
    ],
  }),
  encodeSyncMessage({
    type: 'vector',
    vector: [
      {
        author: devicePublicKey,
        stream: 'x',
        low: 0,
        high: 0,
        count: 1,
        heads: [blocks[0]!.hash],
        kept: new Uint8Array(0),
      },
    ],
  }),
  encodeSyncMessage({ type: 'want', streams: [[gatewayPublicKey, 'default']] }),
  ...blockEnvelopes.map((envelope) => encodeSyncMessage({ type: 'block', envelope })),
];

export const authMessages: Uint8Array[] = [
  encodeAuthMessage({ type: 'auth-hello', publicKey: gatewayPublicKey, nonce: sha256(Uint8Array.of(3)) }),
  encodeAuthMessage({ type: 'auth-proof', signature: signEd25519(gatewaySeed, Uint8Array.of(4)) }),
  encodeAuthMessage({ type: 'auth-refused', reason: 'unknown gateway' }),
];

export const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
export const dec = (b: Uint8Array): string => Buffer.from(b).toString('latin1');
