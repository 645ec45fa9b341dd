/**
 * Noise XX sibling links (gateway/sync/noise-stream.ts) over real TCP: a gateway whose key is
 * not pinned, or a plain (unencrypted) dialer, is cut before any block moves. Siblings
 * converging through the encrypted link (the default) is the sync acceptance suite's
 * (test/acceptance/sync-tcp.ts).
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { publicKeyFromSeed } from '../../gateway/crypto/ed25519.js';
import { x25519FromEd25519Seed } from '../../gateway/policy/seal.js';
import { type LinkError, SyncServer, syncOverTcp } from '../../gateway/sync/tcp.js';
import type { FrameEntry } from '../../protocols/index.js';
import { frameEntries, testDevice } from '../helpers/devices.js';
import { logNode } from '../helpers/log-node.js';

const dev = testDevice('dev-noise');
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});
const frames = (boot: number, n: number): FrameEntry[] => frameEntries(dev, boot, n);

describe('sync over Noise-encrypted TCP', () => {
  const [sa, sb, sc] = [randomBytes(32), randomBytes(32), randomBytes(32)];
  const [ka, kb] = [sa, sb].map(publicKeyFromSeed) as [Uint8Array, Uint8Array];

  async function serve(seed: Uint8Array, peers: Uint8Array[]) {
    const n = logNode(seed, peers, [dev], closers);
    const links: { peer?: string; error?: LinkError }[] = [];
    const server = await SyncServer.listen('127.0.0.1', 0, {
      log: n.log,
      identity: n.identity,
      peers,
      noiseSecret: x25519FromEd25519Seed(seed),
      onLink: (r) => links.push(r),
    });
    closers.push(() => server.close());
    return { n, server, links };
  }

  it('cuts an unpinned gateway and a plain dialer before any block moves', async () => {
    const { n: b, server, links } = await serve(sb, [ka]);
    const c = logNode(sc, [kb], [dev], closers);
    c.log.appendFrames(frames(7, 10));
    await c.log.durable();
    const before = b.log.headsDigest();
    await expect(
      syncOverTcp('127.0.0.1', server.port, {
        log: c.log,
        identity: c.identity,
        peers: [kb],
        noiseSecret: x25519FromEd25519Seed(sc),
      }),
    ).rejects.toThrow();
    await expect(
      syncOverTcp('127.0.0.1', server.port, { log: c.log, identity: c.identity, peers: [kb], idleTimeoutMs: 3000 }),
    ).rejects.toThrow();
    await new Promise((res) => setTimeout(res, 200));
    expect(links.length).toBeGreaterThanOrEqual(1);
    expect(links.every((l) => l.error !== undefined)).toBe(true);
    expect(b.log.headsDigest()).toBe(before);
  });
});
