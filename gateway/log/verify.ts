/**
 * Block verification: content address, author signature (against a known
 * gateway key), the `prev` chain and `parents` (present, same stream, one seq
 * back, lamport strictly increasing), and every device signature inside a
 * frames block (against the device registry). Each fault has its own code, so a
 * flipped byte in a frame, a forged author signature and a broken chain are
 * told apart.
 */
import {
  blockSigningInput,
  decodeBodyResolved,
  hashHex,
  kidToDeviceId,
  type ResolvedRecord,
  Sign1Payloads,
  type SignedBlock,
  toHex,
  type UplinkBody,
} from '../../protocols/index.js';
import { verifyEd25519 } from '../crypto/ed25519.js';
import { type FrameId, parseFrame, type ParsedFrame, type SignatureChecks } from './frame-checks.js';

export type { FrameId } from './frame-checks.js';

export type FaultCode =
  /** The stored bytes do not decode as a signed block. */
  | 'malformed'
  /** The block is stored under a hash that is not the SHA-256 of its bytes. */
  | 'hash-mismatch'
  /** The author is not a gateway this one trusts. */
  | 'unknown-author'
  /** The author signature does not verify. */
  | 'bad-signature'
  /** `prev` (or a parent) is not in the log. */
  | 'missing-prev'
  | 'missing-parent'
  /** `prev` names a block of another stream or seq than the one before. */
  | 'broken-chain'
  /** Lamport time not above that of prev and parents. */
  | 'bad-lamport'
  /** A frame inside the block is not a device frame. */
  | 'frame-malformed'
  | 'unknown-device'
  /** A device signature inside a frames block does not verify. */
  | 'device-signature'
  /** A sealed block this gateway holds the key for does not decrypt (or its plaintext is not a block body). */
  | 'sealed-body';

export interface Fault {
  readonly code: FaultCode;
  /** Hex hash of the faulty block (as stored or as received). */
  readonly block: string;
  readonly detail: string;
}

/** What verification needs to know about a block it refers to. */
export interface BlockRef {
  readonly author: string;
  readonly stream: string;
  readonly seq: number;
  readonly lamport: number;
}

export interface VerifyContext {
  isKnownAuthor(author: Uint8Array): boolean;
  /**
   * A device's Ed25519 public keys: the local registry's, or for a device not enrolled here,
   * those enrolled by enrolment blocks in the log (revoked devices too: old frames stay valid).
   */
  deviceKeys(device: string): readonly Uint8Array[];
  /** A block already in the log (or verified earlier in the same walk). */
  lookup(hashHex: string): BlockRef | undefined;
  /** A stream's low-water mark (retention): a block at or below it may lack its pruned `prev`. */
  mark?(author: string, stream: string): number;
  /** Some stream was pruned, so a parent that is not held may be a pruned block (its stream is not known from the hash). */
  danglingParentsOk?(): boolean;
}

/** The author signature (`checked`: its result found on the verify pool) and the block's links; no device signatures. */
export function verifyHeader(sb: SignedBlock, ctx: VerifyContext, claimedHash?: string, checked?: boolean): Fault[] {
  const faults: Fault[] = [];
  const h = hashHex(sb.hash);
  const b = sb.block;
  const at = claimedHash ?? h;
  if (claimedHash !== undefined && claimedHash !== h)
    faults.push({ code: 'hash-mismatch', block: at, detail: `bytes hash to ${h}` });
  if (!ctx.isKnownAuthor(b.author))
    faults.push({ code: 'unknown-author', block: at, detail: `author ${hashHex(b.author)} is not a known gateway` });
  if (!(checked ?? verifyEd25519(b.author, blockSigningInput(sb.hash), sb.signature)))
    faults.push({ code: 'bad-signature', block: at, detail: 'author signature does not verify' });
  const author = hashHex(b.author);
  if (b.prev !== null) {
    const p = ctx.lookup(hashHex(b.prev));
    if (!p) {
      if (b.seq > (ctx.mark?.(author, b.stream) ?? 0))
        faults.push({ code: 'missing-prev', block: at, detail: `prev ${hashHex(b.prev)} is not in the log` });
    } else if (p.author !== author || p.stream !== b.stream || p.seq !== b.seq - 1) {
      faults.push({
        code: 'broken-chain',
        block: at,
        detail: `prev is ${p.author.slice(0, 8)}/${p.stream}#${p.seq}, expected ${author.slice(0, 8)}/${b.stream}#${b.seq - 1}`,
      });
    } else if (p.lamport >= b.lamport)
      faults.push({ code: 'bad-lamport', block: at, detail: `lamport ${b.lamport} not above prev's ${p.lamport}` });
  }
  for (const parent of b.parents) {
    const p = ctx.lookup(hashHex(parent));
    if (!p) {
      if (!ctx.danglingParentsOk?.())
        faults.push({ code: 'missing-parent', block: at, detail: `parent ${hashHex(parent)} is not in the log` });
    } else if (p.lamport >= b.lamport)
      faults.push({ code: 'bad-lamport', block: at, detail: `lamport ${b.lamport} not above a parent's ${p.lamport}` });
  }
  return faults;
}

/** Decodes a frame's identity (device from kid, boot and seq from the body) without verifying it. */
export function frameId(frame: Uint8Array): FrameId | undefined {
  return decided.get(frame) ?? frameIdAndBody(frame)?.id;
}

/**
 * A frame's identity and the body it was read from (the body when ingest decoded it, or
 * decoded now), with a reading's records resolved: a reader that needs both (the export, for
 * the records) decodes the frame once. Decoded by the fast paths where the bytes have the
 * common shape (protocols/sign1-payloads.ts, reading-decode.ts; each falls back to the full
 * decoder, so the answer is decodeSign1 → decodeBody's): the export reads every stored frame,
 * and the generic decode's Maps and second resolve were most of what it allocated per frame.
 */
export function frameIdAndBody(frame: Uint8Array): (DecodedBody & { id: FrameId }) | undefined {
  const known = decided.get(frame);
  const had = bodies.get(frame);
  if (known && had) return { id: known, body: had.body, resolved: had.resolved };
  const parts = envelopes.kidAndPayload(frame);
  if (!parts) return undefined;
  const device = deviceOfKid(parts.kid);
  if (device === undefined) return undefined;
  const d = decodeBodyResolved(parts.payload);
  if (!d || (d.body.type !== 'reading' && d.body.type !== 'command-ack')) return undefined;
  return { id: { device, boot: d.body.boot, seq: d.body.seq }, body: d.body, resolved: d.resolved };
}

/** decodeSign1's parts, each device's envelope checked once (its kid shared by the frames of that envelope). */
const envelopes = new Sign1Payloads();
/** The device id of a kid (null: not a valid id), by the kid object `envelopes` shares. */
const kidDevices = new WeakMap<Uint8Array, string | null>();

function deviceOfKid(kid: Uint8Array): string | undefined {
  let d = kidDevices.get(kid);
  if (d === undefined) kidDevices.set(kid, (d = kidToDeviceId(kid) ?? null));
  return d ?? undefined;
}

/**
 * Identities ingest has just decoded, by the frame's own bytes object: authoring and the view
 * read each frame's identity again in the same turn, and decoding it twice more was a few
 * percent of ingest. Held weakly, so an entry goes with its frame.
 */
const decided = new WeakMap<Uint8Array, FrameId>();
/**
 * Bodies ingest decoded, likewise, and a reading's records as it resolved them: the local rollups
 * read each new frame's records (export/records.ts).
 */
const bodies = new WeakMap<Uint8Array, DecodedBody>();

export interface DecodedBody {
  readonly body: UplinkBody;
  /** A reading's records resolved (RFC 8428 §4.6), where the decoder resolved them. */
  readonly resolved?: readonly ResolvedRecord[] | undefined;
}

/**
 * Records what `frameId(frame)` is, as ingest decoded it (the same decode: kid, then the body's
 * boot and seq), and the body it decoded (with its records resolved, if they were).
 */
export function knownFrameId(
  frame: Uint8Array,
  id: FrameId,
  body?: UplinkBody,
  resolved?: readonly ResolvedRecord[],
): void {
  decided.set(frame, id);
  if (body) bodies.set(frame, { body, resolved });
}

/** The body of a frame as ingest decoded it, while the frame's bytes object lives (else undefined: decode it). */
export function decodedBody(frame: Uint8Array): DecodedBody | undefined {
  return bodies.get(frame);
}

/**
 * Every device signature inside a frames block (none for other kinds). `frames` and `checks`:
 * the frames already parsed and signatures already checked (on the verify pool); what they do
 * not cover is decoded and verified here. A frame that verifies has its identity recorded for
 * the view (`knownFrameId`), so it is not decoded again.
 */
export function verifyFrames(
  sb: SignedBlock,
  ctx: VerifyContext,
  at = hashHex(sb.hash),
  frames?: readonly ParsedFrame[],
  checks?: SignatureChecks,
): Fault[] {
  if (sb.block.kind !== 'frames') return [];
  const faults: Fault[] = [];
  // A block holds a few devices' frames: their keys are read once per block.
  const keysOf = new Map<string, { keys: readonly Uint8Array[]; hex: string[] }>();
  sb.block.body.forEach((entry, i) => {
    const p = frames?.[i] ?? parseFrame(entry.frame);
    if (!p.ok) {
      faults.push({ code: 'frame-malformed', block: at, detail: `frame ${i}: ${p.detail}` });
      return;
    }
    let k = keysOf.get(p.device);
    if (!k) {
      const keys = ctx.deviceKeys(p.device);
      keysOf.set(p.device, (k = { keys, hex: keys.map(toHex) }));
    }
    if (k.keys.length === 0) {
      faults.push({ code: 'unknown-device', block: at, detail: `frame ${i}: device ${p.device} is not enrolled` });
      return;
    }
    const { keys, hex } = k;
    if (!keys.some((key, j) => checks?.frame(i, hex[j]!) ?? verifyEd25519(key, p.message, p.signature))) {
      faults.push({
        code: 'device-signature',
        block: at,
        detail: `frame ${i}: ${p.device}'s signature does not verify`,
      });
      return;
    }
    if (p.id === undefined)
      faults.push({ code: 'frame-malformed', block: at, detail: `frame ${i}: body is not a device reading or ack` });
    // Parsed here: recorded for the view and the listeners. Parsed before (sync's intake), the
    // caller hands its parse to the view itself (apply.ts `put`), sparing a WeakMap entry a frame.
    else if (frames?.[i] === undefined) knownFrameId(entry.frame, p.id, p.body);
  });
  return faults;
}
