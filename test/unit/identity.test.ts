import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parsePublicKey, sigStructure } from '../../protocols/index.js';
import { verifyEd25519 } from '../../gateway/crypto/ed25519.js';
import { GatewayIdentity } from '../../gateway/identity.js';
import { tempDir } from '../helpers/env.js';

describe('gateway identity', () => {
  const tmp = tempDir();
  afterAll(() => tmp.cleanup());

  it('creates a private seed file once and signs with the key its did:key names', () => {
    const a = GatewayIdentity.loadOrCreate('gw-1', tmp.dir);
    expect(statSync(join(tmp.dir, 'identity.key')).mode & 0o777).toBe(0o600);
    const b = GatewayIdentity.loadOrCreate('gw-1', tmp.dir);
    expect(b.did).toBe(a.did);
    const msg = sigStructure(new Uint8Array([0xa1, 0x01, 0x27]), new Uint8Array([1, 2, 3]));
    const key = parsePublicKey(a.did);
    expect(key.ok && verifyEd25519(key.value, msg, b.sign(msg))).toBe(true);
  });

  it('refuses a corrupted seed file with a message naming it', () => {
    const dir = join(tmp.dir, 'bad');
    GatewayIdentity.loadOrCreate('gw-2', dir);
    writeFileSync(join(dir, 'identity.key'), 'not hex\n');
    expect(() => GatewayIdentity.loadOrCreate('gw-2', dir)).toThrow(/identity\.key must hold 64 hex digits/);
  });
});
