/** Frames of a data directory read or written outside a running gateway (the gateway is stopped). */
import type { FrameEntry } from '../../protocols/index.js';
import { GatewayIdentity } from '../../gateway/identity.js';
import { BlockLog } from '../../gateway/log/block-log.js';
import { FrameReader, type FrameRow } from '../../gateway/log/frames-index.js';
import { Store } from '../../gateway/store/store.js';

/** Every frame the data directory holds (the merged history, once each), in receive-time order. */
export async function readFrames(dataDir: string): Promise<FrameRow[]> {
  const store = Store.open(dataDir);
  try {
    return [...FrameReader.plain(store.root).query({})];
  } finally {
    await store.close();
  }
}

/** Logs frames as this data directory's gateway would (its identity; one block per 1024), then closes. */
export async function logFrames(dataDir: string, gatewayId: string, frames: readonly FrameEntry[]): Promise<void> {
  const identity = GatewayIdentity.loadOrCreate(gatewayId, dataDir);
  const store = Store.open(dataDir);
  try {
    const log = new BlockLog(store, { publicKey: identity.publicKey, sign: identity.sign });
    log.appendFrames(frames);
    await log.settled();
  } finally {
    await store.close();
  }
}
