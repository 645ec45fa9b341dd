/**
 * Verify worker: checks a packed batch of Ed25519 signatures with node:crypto.
 * Batch layout, repeated: shape[1] pub[32] sig[64] len[u32 BE] msg[len], where shape 0 marks a job
 * whose key or signature had the wrong length (never valid: note that an all-zero key and
 * signature *do* verify in OpenSSL, as the key is of small order). Reply: one byte per job (1 = valid).
 */
import { parentPort } from 'node:worker_threads';
import { verifyEd25519 } from '../crypto/ed25519.js';

/** Bytes before each job's message: shape flag, public key, signature, length. */
export const JOB_HEADER = 1 + 32 + 64 + 4;

export interface VerifyRequest {
  readonly id: number;
  readonly batch: ArrayBuffer;
  readonly count: number;
}
export interface VerifyReply {
  readonly id: number;
  readonly results: Uint8Array;
}

export function verifyPacked(batch: Uint8Array, count: number): Uint8Array {
  const out = new Uint8Array(count);
  const view = new DataView(batch.buffer, batch.byteOffset, batch.byteLength);
  let off = 0;
  for (let i = 0; i < count; i++) {
    const shapeOk = batch[off] === 1;
    const pub = batch.subarray(off + 1, off + 33);
    const sig = batch.subarray(off + 33, off + 97);
    const len = view.getUint32(off + 97);
    const msg = batch.subarray(off + JOB_HEADER, off + JOB_HEADER + len);
    off += JOB_HEADER + len;
    out[i] = shapeOk && verifyEd25519(pub, msg, sig) ? 1 : 0;
  }
  return out;
}

parentPort?.on('message', (req: VerifyRequest) => {
  const results = verifyPacked(new Uint8Array(req.batch), req.count);
  const reply: VerifyReply = { id: req.id, results };
  parentPort!.postMessage(reply, [results.buffer as ArrayBuffer]);
});
