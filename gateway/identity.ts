/**
 * The gateway's own Ed25519 identity: it signs downlink frames (acks,
 * commands) and, later, log blocks. The 32-byte seed lives in the data
 * directory (mode 0600) and is created on first start: whole or not at all, and not while
 * the free-space guard refuses writes.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KeyObject } from 'node:crypto';
import { randomBytes } from 'node:crypto';
import { publicKeyToDidKey, type SignFn } from '../protocols/index.js';
import { privateKeyObject, publicKeyFromSeed, signEd25519 } from './crypto/ed25519.js';
import { x25519FromEd25519Seed } from './policy/seal.js';
import type { FreeSpaceGuard } from './store/free-space.js';
import { writeFileWhole } from './store/whole-file.js';

export class GatewayIdentity {
  readonly publicKey: Uint8Array;
  readonly did: string;
  /** The X25519 secret of the same seed: opens data keys of confidential policies wrapped for this gateway. */
  readonly x25519Secret: Uint8Array;
  private readonly key: KeyObject;

  private constructor(
    readonly id: string,
    seed: Uint8Array,
  ) {
    this.key = privateKeyObject(seed);
    this.publicKey = publicKeyFromSeed(seed);
    this.did = publicKeyToDidKey(this.publicKey);
    this.x25519Secret = x25519FromEd25519Seed(seed);
  }

  /**
   * Loads `identity.key` from the data directory, creating it on first use; `space` refuses the
   * creation (DiskLowError) while the disk is below its floor.
   */
  static loadOrCreate(id: string, dataDir: string, space?: FreeSpaceGuard): GatewayIdentity {
    const file = join(dataDir, 'identity.key');
    if (!existsSync(file)) {
      mkdirSync(dataDir, { recursive: true });
      space?.require("creating the gateway's identity key");
      writeFileWhole(file, randomBytes(32).toString('hex') + '\n', { mode: 0o600, exclusive: true });
    }
    chmodSync(file, 0o600);
    return new GatewayIdentity(id, readSeed(file));
  }

  /** The identity in a data directory, never creating one (undefined before the first start): for read-only commands. */
  static loadExisting(id: string, dataDir: string): GatewayIdentity | undefined {
    const file = join(dataDir, 'identity.key');
    return existsSync(file) ? new GatewayIdentity(id, readSeed(file)) : undefined;
  }

  /** The public key of the identity in a data directory, without creating one (undefined before the first start). */
  static publicKeyIn(dataDir: string): Uint8Array | undefined {
    const file = join(dataDir, 'identity.key');
    return existsSync(file) ? publicKeyFromSeed(readSeed(file)) : undefined;
  }

  readonly sign: SignFn = (message) => signEd25519(this.key, message);
}

function readSeed(file: string): Uint8Array {
  const hex = readFileSync(file, 'utf8').trim();
  if (!/^[0-9a-f]{64}$/i.test(hex)) throw new Error(`${file} must hold 64 hex digits (the gateway's Ed25519 seed)`);
  return Buffer.from(hex, 'hex');
}
