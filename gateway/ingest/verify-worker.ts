/**
 * Verify worker: checks a packed batch of Ed25519 signatures with node:crypto.
 * Batch layout, repeated: pub[32] sig[64] len[u32 BE] msg[len]. Reply: one byte per job (1 = valid).
 */
import { parentPort } from 'node:worker_threads';
import { verifyEd25519 } from '../crypto/ed25519.js';

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
    const pub = batch.subarray(off, off + 32);
    const sig = batch.subarray(off + 32, off + 96);
    const len = view.getUint32(off + 96);
    const msg = batch.subarray(off + 100, off + 100 + len);
    off += 100 + len;
    out[i] = verifyEd25519(pub, msg, sig) ? 1 : 0;
  }
  return out;
}

parentPort?.on('message', (req: VerifyRequest) => {
  const results = verifyPacked(new Uint8Array(req.batch), req.count);
  const reply: VerifyReply = { id: req.id, results };
  parentPort!.postMessage(reply, [results.buffer as ArrayBuffer]);
});
