/**
 * A gateway's block log alone, for sync tests: its own temp lmdb store with the given devices
 * enrolled and an Ed25519 identity from `seed`; `closers` gets what closes it (after its queued
 * writes settle) and removes the directory.
 */
import { publicKeyFromSeed, signEd25519 } from '../../gateway/crypto/ed25519.js';
import { BlockLog } from '../../gateway/log/block-log.js';
import { Store } from '../../gateway/store/store.js';
import type { TestDevice } from './devices.js';
import { tempDir } from './env.js';

export interface LogNode {
  log: BlockLog;
  /** The lmdb store behind it. */
  store: Store;
  identity: { publicKey: Uint8Array; sign: (m: Uint8Array) => Uint8Array };
}

export function logNode(
  seed: Uint8Array,
  peers: Uint8Array[],
  devices: readonly TestDevice[],
  closers: (() => Promise<void> | void)[],
): LogNode {
  const { dir, cleanup } = tempDir('outpost-log-node-');
  const store = Store.open(dir);
  for (const d of devices) store.devices.putSync(d.id, { id: d.id, publicKey: d.publicKeyHex, enrolledAt: 1 });
  const identity = { publicKey: publicKeyFromSeed(seed), sign: (m: Uint8Array) => signEd25519(seed, m) };
  const log = new BlockLog(store, { ...identity, knownAuthors: peers });
  closers.push(async () => {
    await log.settled().catch(() => {});
    await store.close();
    cleanup();
  });
  return { log, store, identity };
}
