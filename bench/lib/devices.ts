/**
 * Bench devices: test/helpers/devices.ts's frames (same body, node:crypto Ed25519), with the
 * private key parsed once, so pre-signing a million frames costs the signatures only.
 */
import { randomBytes } from 'node:crypto';
import { type ReadingBody, signBody } from '../../protocols/index.js';
import { privateKeyObject, publicKeyFromSeed, signEd25519 } from '../../gateway/crypto/ed25519.js';
import type { TestDevice } from '../../test/helpers/devices.js';

export function benchDevice(id: string, seed: Uint8Array = randomBytes(32)): TestDevice {
  const key = privateKeyObject(seed);
  return {
    id,
    seed,
    publicKeyHex: Buffer.from(publicKeyFromSeed(seed)).toString('hex'),
    frame(boot, seq, value = seq) {
      const body: ReadingBody = {
        type: 'reading',
        boot,
        seq,
        time: 1_760_000_000_000 + seq * 1000,
        records: [{ bn: `${id}:`, n: 'temp', u: 'Cel', v: value }],
      };
      return signBody(body, id, (m) => signEd25519(key, m));
    },
  };
}
