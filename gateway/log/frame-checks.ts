/**
 * A frames block's frames parsed once, and signatures checked ahead of `apply` (sync's block
 * intake verifies them on the worker pool). `verifyFrames` uses what is given here and checks
 * the rest inline, so every check and fault code is the same whether or not a pool ran.
 */
import {
  decodeBody,
  decodeSign1,
  kidToDeviceId,
  type SignedBlock,
  sigStructure,
  type UplinkBody,
} from '../../protocols/index.js';

/** One frame of a frames block, identified. */
export interface FrameId {
  readonly device: string;
  readonly boot: number;
  readonly seq: number;
}

/** A frame as verification reads it: who signed what, and its identity when the body is a reading or ack. */
export type ParsedFrame =
  | { readonly ok: false; readonly detail: string }
  | {
      readonly ok: true;
      readonly device: string;
      /** The COSE Sig_structure the device signed (RFC 9052 §4.4). */
      readonly message: Uint8Array;
      readonly signature: Uint8Array;
      readonly id: FrameId | undefined;
      readonly body: UplinkBody | undefined;
    };

/** Decodes a frame once for its signature check and its identity (the view reads the identity next). */
export function parseFrame(frame: Uint8Array): ParsedFrame {
  const cose = decodeSign1(frame);
  const device = cose.ok ? kidToDeviceId(cose.value.kid) : undefined;
  // decodeSign1 refuses any alg but EdDSA/Ed25519 (cose/unsupported-alg).
  if (!cose.ok || device === undefined) return { ok: false, detail: cose.ok ? 'bad kid' : cose.error.code };
  const { protectedBytes, payload, signature } = cose.value;
  const read = identify(device, payload);
  return {
    ok: true,
    device,
    message: sigStructure(protectedBytes, payload),
    signature,
    id: read?.id,
    body: read?.body,
  };
}

/** A frame's identity and body from its payload, when the body is a reading or a command ack. */
function identify(device: string, payload: Uint8Array): { id: FrameId; body: UplinkBody } | undefined {
  const body = decodeBody(payload);
  if (!body.ok || (body.value.type !== 'reading' && body.value.type !== 'command-ack')) return undefined;
  return { id: { device, boot: body.value.boot, seq: body.value.seq }, body: body.value };
}

/** Signature results found elsewhere (the verify pool): the author's, and per frame per device key (hex). */
export class SignatureChecks {
  author: boolean | undefined;
  // A device has one key almost always: frame i's first result in two arrays, others in a Map
  // (no Map per frame: this runs for every frame synced).
  private readonly keys: (string | undefined)[] = [];
  private readonly valid: boolean[] = [];
  private more: Map<string, boolean> | undefined;

  record(frame: number, key: string, valid: boolean): void {
    const first = this.keys[frame];
    if (first === undefined || first === key) {
      this.keys[frame] = key;
      this.valid[frame] = valid;
    } else (this.more ??= new Map()).set(`${frame}/${key}`, valid);
  }

  /** The result for frame i under `key` (hex), if it was checked. */
  frame(i: number, key: string): boolean | undefined {
    if (this.keys[i] === key) return this.valid[i];
    return this.more?.get(`${i}/${key}`);
  }
}

/** What `apply` can take from a pre-check: the decoded block, its frames parsed, signatures checked. */
export interface Prechecked {
  readonly decoded: SignedBlock;
  /** Parsed frames of `decoded` (a frames block; none for a sealed one, whose frames are inside). */
  readonly frames?: readonly ParsedFrame[];
  readonly checks?: SignatureChecks;
}
