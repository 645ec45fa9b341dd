/** Test devices signing with node:crypto (independent of firmware-sim's @noble signer). */
import { randomBytes } from 'node:crypto';
import { type FrameEntry, type ReadingBody, signBody } from '../../protocols/index.js';
import { publicKeyFromSeed, signEd25519 } from '../../gateway/crypto/ed25519.js';

export interface TestDevice {
  readonly id: string;
  readonly seed: Uint8Array;
  readonly publicKeyHex: string;
  frame(boot: number, seq: number, value?: number): Uint8Array;
}

export function testDevice(id: string, seed: Uint8Array = randomBytes(32)): TestDevice {
  const pub = publicKeyFromSeed(seed);
  return {
    id,
    seed,
    publicKeyHex: Buffer.from(pub).toString('hex'),
    frame(boot, seq, value = seq) {
      const body: ReadingBody = {
        type: 'reading',
        boot,
        seq,
        time: Date.now(),
        records: [{ bn: `${id}:`, n: 'temp', u: 'Cel', v: value }],
      };
      return signBody(body, id, (m) => signEd25519(seed, m));
    },
  };
}

/** `n` frames of one boot (seq 0…n−1) as a gateway that heard them over `transport` would log them. */
export const frameEntries = (dev: TestDevice, boot: number, n: number, transport = 'mqtt'): FrameEntry[] =>
  Array.from({ length: n }, (_, i) => ({ frame: dev.frame(boot, i), rxTime: 1_760_000_000_000 + i, transport }));
