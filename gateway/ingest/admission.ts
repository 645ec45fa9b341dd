/**
 * Admission: the synchronous checks on a frame before its signature is verified (size, COSE
 * envelope, kid, claimed device, registry), and the verify job for the frames that pass. It
 * writes into the frame's pipeline entry rather than returning an object: it runs per frame.
 */
import { decodeSign1, kidToDeviceId, type Sign1Payloads, sigStructure } from '../../protocols/index.js';
import type { Registry } from '../registry.js';
import { type FrameMeta, type IngestOutcome, rejected } from './outcome.js';
import type { VerifyJob } from './verify-pool.js';

/** What admission reads and fills in on a frame's entry: an outcome when refused, else the rest. */
export interface Admission {
  readonly bytes: Uint8Array;
  readonly meta: FrameMeta;
  outcome?: IngestOutcome;
  device?: string;
  job?: VerifyJob;
  payload?: Uint8Array;
  /** The device's registry record (tagging looks at its model and site). */
  record?: { readonly model?: string; readonly site?: string };
}

export function admit(e: Admission, envelopes: Sign1Payloads, registry: Registry, maxFrameBytes: number): void {
  if (e.bytes.length > maxFrameBytes) {
    e.outcome = rejected('too-large', `${e.bytes.length} bytes exceeds ${maxFrameBytes}`);
    return;
  }
  // The fast path answers what decodeSign1 answers; where it does not answer, decodeSign1 says why.
  let parts = envelopes.parts(e.bytes);
  if (!parts) {
    const cose = decodeSign1(e.bytes, { maxBytes: maxFrameBytes });
    if (!cose.ok) {
      e.outcome = rejected(
        cose.error.code === 'cose/unsupported-alg' ? 'unsupported-alg' : 'malformed',
        `${cose.error.code}: ${cose.error.message}`,
      );
      return;
    }
    parts = cose.value;
  }
  // decodeSign1 has refused any alg but EdDSA/Ed25519 (cose/unsupported-alg above).
  const { kid, protectedBytes, payload, signature } = parts;
  const device = kidToDeviceId(kid);
  if (device === undefined) {
    e.outcome = rejected('unknown-device', `kid ${Buffer.from(kid).toString('hex')} is not a device id`);
    return;
  }
  e.device = device;
  if (e.meta.claimedDevice !== undefined && e.meta.claimedDevice !== device) {
    e.outcome = rejected('device-mismatch', `frame signed as ${device} arrived for ${e.meta.claimedDevice}`, device);
    return;
  }
  const active = registry.active(device);
  if (!active) {
    const known = registry.get(device);
    e.outcome = known
      ? rejected('revoked-device', `device ${device} is revoked`, device)
      : rejected('unknown-device', `device ${device} is not enrolled`, device);
    return;
  }
  e.payload = payload;
  e.record = active.record;
  e.job = { publicKey: active.publicKey, signature, message: sigStructure(protectedBytes, payload) };
}
