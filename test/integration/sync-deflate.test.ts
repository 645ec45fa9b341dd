/**
 * Link compression on real sync links (gateway/sync/link.ts, protocols/link-deflate.ts):
 * two gateways that both offer it deflate their exchange over TCP and over Noise, and carry
 * fewer bytes than the messages; a gateway that does not offer it (as an older one) and one
 * that does agree on plain messages in either role and converge; a peer that agreed and then
 * sends a decompression bomb ends the link as too-large, with nothing applied; a message of
 * the largest size, incompressible, still fits the transport once deflated.
 */
import { randomBytes } from 'node:crypto';
import { deflateRawSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { publicKeyFromSeed } from '../../gateway/crypto/ed25519.js';
import { x25519FromEd25519Seed } from '../../gateway/policy/seal.js';
import {
  authenticate,
  LinkError,
  MAX_LINK_MESSAGE,
  MAX_SYNC_MESSAGE,
  type MessageLink,
  MessageQueue,
  respond,
} from '../../gateway/sync/link.js';
import { SyncServer, syncOverTcp } from '../../gateway/sync/tcp.js';
import { type FrameEntry, MessageDeflater, MessageInflater } from '../../protocols/index.js';
import { frameEntries, testDevice } from '../helpers/devices.js';
import { type LogNode, logNode } from '../helpers/log-node.js';

const dev = testDevice('dev-deflate');
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});
const frames = (boot: number, n: number): FrameEntry[] => frameEntries(dev, boot, n, 'mqtt');

const [sa, sb] = [randomBytes(32), randomBytes(32)];

/** The responder reports its side once its durable write is done, after the dialer returned. */
async function reported(links: readonly unknown[], n: number): Promise<void> {
  for (let i = 0; i < 300 && links.length < n; i++) await new Promise((res) => setTimeout(res, 20));
}
const [ka, kb] = [sa, sb].map(publicKeyFromSeed) as [Uint8Array, Uint8Array];

async function pair(): Promise<[LogNode, LogNode]> {
  const a = logNode(sa, [kb], [dev], closers);
  const b = logNode(sb, [ka], [dev], closers);
  for (let k = 0; k < 4; k++) a.log.appendFrames(frames(1 + k, 50));
  for (let k = 0; k < 4; k++) b.log.appendFrames(frames(100 + k, 50));
  await Promise.all([a.log.durable(), b.log.durable()]);
  return [a, b];
}

async function serve(b: LogNode, extra: { deflate?: boolean; noiseSecret?: Uint8Array } = {}) {
  const links: { error?: LinkError }[] = [];
  const server = await SyncServer.listen('127.0.0.1', 0, {
    log: b.log,
    identity: b.identity,
    peers: [ka],
    onLink: (r) => links.push(r),
    ...extra,
  });
  closers.push(() => server.close());
  return { server, links };
}

describe('sync link compression', () => {
  for (const noise of [false, true]) {
    it(`both sides offer it${noise ? ' (over Noise)' : ''}: deflated, fewer bytes than the messages, converged`, async () => {
      const [a, b] = await pair();
      const { server, links } = await serve(b, noise ? { noiseSecret: x25519FromEd25519Seed(sb) } : {});
      const r = await syncOverTcp('127.0.0.1', server.port, {
        log: a.log,
        identity: a.identity,
        peers: [kb],
        ...(noise && { noiseSecret: x25519FromEd25519Seed(sa) }),
      });
      expect(r.deflate).toBe(true);
      expect(r.stats.rejected).toEqual([]);
      // Frames carry a 64-byte signature each, so not the ratio of text; still well under the messages.
      expect(r.linkBytes.sent).toBeLessThan(r.stats.bytesSent * 0.85);
      expect(r.linkBytes.received).toBeLessThan(r.stats.bytesReceived * 0.85);
      await reported(links, 1);
      expect(links.map((l) => l.error)).toEqual([undefined]);
      expect(b.log.headsDigest()).toBe(a.log.headsDigest());
      expect([...b.log.frameView()]).toHaveLength(400);
    });
  }

  it('a gateway that does not offer it (an older one) and one that does: plain messages, either role', async () => {
    const [a, b] = await pair();
    const { server: plainServer } = await serve(b, { deflate: false });
    const r1 = await syncOverTcp('127.0.0.1', plainServer.port, { log: a.log, identity: a.identity, peers: [kb] });
    expect(r1.deflate).toBe(false);
    expect(r1.linkBytes).toEqual({ sent: r1.stats.bytesSent, received: r1.stats.bytesReceived });
    expect(b.log.headsDigest()).toBe(a.log.headsDigest());
    await plainServer.close();
    a.log.appendFrames(frames(9, 10));
    await a.log.durable();
    const { server, links } = await serve(b);
    const r2 = await syncOverTcp('127.0.0.1', server.port, {
      log: a.log,
      identity: a.identity,
      peers: [kb],
      deflate: false,
    });
    expect(r2.deflate).toBe(false);
    expect(r2.stats.blocksSent).toBe(1);
    await reported(links, 1);
    expect(links.map((l) => l.error)).toEqual([undefined]);
    expect(b.log.headsDigest()).toBe(a.log.headsDigest());
  });

  it('a peer that agreed and sends a decompression bomb: the link ends too-large, nothing applied', async () => {
    const [a, b] = await pair();
    const qa = new MessageQueue();
    const qb = new MessageQueue();
    const close = async (): Promise<void> => {
      qa.fail(new LinkError('closed', 'link closed'));
      qb.fail(new LinkError('closed', 'link closed'));
    };
    const ours: MessageLink = { send: (m) => qb.push(m), next: () => qa.next(), end: close };
    const theirs: MessageLink = { send: (m) => qa.push(m), next: () => qb.next(), end: close };
    const reports: { error?: LinkError }[] = [];
    const done = respond(ours, { log: b.log, identity: b.identity, peers: [ka], onLink: (r) => reports.push(r) });
    const agreed = await authenticate(theirs, { log: a.log, identity: a.identity, peers: [kb] });
    expect(agreed.deflate).toBe(true);
    const before = b.log.blockCount();
    await theirs.send(deflateRawSync(Buffer.alloc(8 << 20))); // 8 MiB of zeros, ~8 kB on the wire
    await done;
    expect(reports).toHaveLength(1);
    expect(reports[0]!.error?.code).toBe('too-large');
    expect(b.log.blockCount()).toBe(before);
  });

  it('a message of the largest size, incompressible, still fits the transport once deflated', () => {
    const msg = new Uint8Array(randomBytes(MAX_SYNC_MESSAGE));
    const z = new MessageDeflater().deflate(msg);
    expect(z.length).toBeGreaterThan(MAX_SYNC_MESSAGE);
    expect(z.length).toBeLessThanOrEqual(MAX_LINK_MESSAGE);
    const back = new MessageInflater(MAX_SYNC_MESSAGE).inflate(z);
    expect(back.ok && back.value.length).toBe(MAX_SYNC_MESSAGE);
  });
});
