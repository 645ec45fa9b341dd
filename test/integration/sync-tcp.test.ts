/**
 * Direct TCP sync links (gateway/sync/tcp.ts) on loopback: mutual signed-challenge
 * authentication, one exchange converges both sides, an equal pair is answered in
 * one small message, unknown gateways and impostors are refused before any block moves,
 * and a link cut mid-exchange loses nothing (the next one completes it).
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { publicKeyFromSeed } from '../../gateway/crypto/ed25519.js';
import { LinkError, SyncServer, syncOverTcp } from '../../gateway/sync/tcp.js';
import type { FrameEntry } from '../../protocols/index.js';
import { frameEntries, testDevice } from '../helpers/devices.js';
import { type LogNode, logNode } from '../helpers/log-node.js';

const dev = testDevice('dev-tcp');
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

type Node = LogNode;
const node = (seed: Uint8Array, peers: Uint8Array[]): Node => logNode(seed, peers, [dev], closers);

const frames = (boot: number, n: number): FrameEntry[] => frameEntries(dev, boot, n, 'serial');

describe('sync over TCP', () => {
  const [sa, sb, sc] = [randomBytes(32), randomBytes(32), randomBytes(32)];
  const [ka, kb] = [sa, sb].map(publicKeyFromSeed) as [Uint8Array, Uint8Array];

  async function serve(n: Node, peers: Uint8Array[]) {
    const links: { peer?: string; error?: LinkError }[] = [];
    const server = await SyncServer.listen('127.0.0.1', 0, {
      log: n.log,
      identity: n.identity,
      peers,
      onLink: (r) => links.push(r),
    });
    closers.push(() => server.close());
    return { server, links };
  }

  it('authenticated siblings converge in one exchange; then equal in one small message', async () => {
    const a = node(sa, [kb]);
    const b = node(sb, [ka]);
    for (let k = 0; k < 5; k++) a.log.appendFrames(frames(1 + k, 20));
    for (let k = 0; k < 3; k++) b.log.appendFrames(frames(100 + k, 20));
    await Promise.all([a.log.durable(), b.log.durable()]);
    const { server, links } = await serve(b, [ka]);
    const r = await syncOverTcp('127.0.0.1', server.port, { log: a.log, identity: a.identity, peers: [kb] });
    expect(r.peer).toBe(b.log.author);
    expect(r.stats).toMatchObject({ applied: 4, blocksSent: 6, rejected: [] }); // each side also logged dev's enrolment
    await new Promise((res) => setTimeout(res, 100));
    expect(links).toHaveLength(1);
    expect(links[0]!.error).toBeUndefined();
    expect(b.log.headsDigest()).toBe(a.log.headsDigest());
    expect([...b.log.frameView()]).toHaveLength(160);
    const again = await syncOverTcp('127.0.0.1', server.port, {
      log: a.log,
      identity: a.identity,
      peers: [kb],
      probe: true,
    });
    expect(again.stats).toMatchObject({
      equal: true,
      messagesSent: 1,
      bytesSent: 36,
      messagesReceived: 1,
      bytesReceived: 2,
    });
  });

  it('refuses an unknown gateway and an impostor before any block moves', async () => {
    const a = node(sa, [kb]);
    const b = node(sb, [ka]);
    const c = node(sc, [kb]);
    c.log.appendFrames(frames(7, 5));
    await c.log.durable();
    const { server, links } = await serve(b, [ka]);
    // c knows b, but b does not know c.
    const unknown = await syncOverTcp('127.0.0.1', server.port, {
      log: c.log,
      identity: c.identity,
      peers: [kb],
    }).catch((e: unknown) => e);
    expect(unknown).toBeInstanceOf(LinkError);
    expect((unknown as LinkError).code).toBe('refused');
    // c claims a's key but cannot sign with it.
    const impostor = await syncOverTcp('127.0.0.1', server.port, {
      log: c.log,
      identity: { publicKey: ka, sign: c.identity.sign },
      peers: [kb],
    }).catch((e: unknown) => e);
    expect(impostor).toBeInstanceOf(LinkError);
    expect((impostor as LinkError).code).toBe('refused');
    await new Promise((res) => setTimeout(res, 100));
    expect(links.map((l) => l.error?.code)).toEqual(['refused', 'auth-failed']);
    expect(b.log.blockCount()).toBe(0);
    // And a dialer refuses a server it does not know.
    const { server: cs } = await serve(c, [ka]);
    const dialUnknown = await syncOverTcp('127.0.0.1', cs.port, {
      log: a.log,
      identity: a.identity,
      peers: [kb],
    }).catch((e: unknown) => e);
    expect((dialUnknown as LinkError).code).toBe('refused');
    expect(a.log.blockCount()).toBe(0);
  });

  it('a link cut mid-exchange loses nothing; the next exchange completes it', async () => {
    const a = node(sa, [kb]);
    const b = node(sb, [ka]);
    for (let k = 0; k < 40; k++) b.log.appendFrames(frames(1 + k, 50));
    await b.log.durable();
    const { server } = await serve(b, [ka]);
    // Cut the link from the dialer's side as soon as the first blocks are applied.
    const origApply = a.log.apply.bind(a.log);
    let applied = 0;
    let cut: (() => void) | undefined;
    a.log.apply = (env) => {
      const r = origApply(env);
      if (++applied === 5) cut?.();
      return r;
    };
    // Plain messages: deflated, these 40 alike blocks would fit in the loopback socket buffers
    // whole and arrive before the cut (link compression is tested in sync-deflate.test.ts).
    const p = syncOverTcp('127.0.0.1', server.port, { log: a.log, identity: a.identity, peers: [kb], deflate: false });
    cut = () => void server.close();
    const first = await p.catch((e: unknown) => e);
    await a.log.durable();
    a.log.apply = origApply;
    const partial = a.log.blockCount();
    expect(partial).toBeGreaterThanOrEqual(5);
    expect(first).toBeInstanceOf(LinkError);
    expect(partial).toBeLessThan(41);
    const { server: s2 } = await serve(b, [ka]);
    const r = await syncOverTcp('127.0.0.1', s2.port, { log: a.log, identity: a.identity, peers: [kb] });
    expect(r.stats.rejected).toEqual([]);
    expect(a.log.blockCount()).toBe(41);
    expect(a.log.headsDigest()).toBe(b.log.headsDigest());
  });
});
