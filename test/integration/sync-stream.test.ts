/**
 * Streaming large differences ("blocks streamed in chain order … resumable after a
 * cut in the middle"), over real lmdb logs:
 * - the engine produces blocks lazily: answering a hello reads nothing until the answer is
 *   consumed, and a consumer that stops after k blocks has caused k reads;
 * - over a real TCP link, plain or Noise-encrypted, a peer that stops reading holds the sender
 *   back: the sender has read only what fits in the socket buffers (and the encrypted stream's
 *   bound), not the whole difference; once the peer reads again, every block arrives;
 * - an exchange cut after k blocks resumes: the next exchange sends only the rest.
 */
import { randomBytes } from 'node:crypto';
import { createConnection, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { publicKeyFromSeed } from '../../gateway/crypto/ed25519.js';
import type { BlockLog } from '../../gateway/log/block-log.js';
import { x25519FromEd25519Seed } from '../../gateway/policy/seal.js';
import { exchange, localVector, SyncSession } from '../../gateway/sync/engine.js';
import { authenticate, type MessageLink, MessageQueue } from '../../gateway/sync/link.js';
import { secureSocket } from '../../gateway/sync/noise-stream.js';
import { SyncServer } from '../../gateway/sync/tcp.js';
import { decodeSyncMessage, encodeSyncMessage, type FrameEntry, fromHex } from '../../protocols/index.js';
import { testDevice } from '../helpers/devices.js';
import { type LogNode, logNode } from '../helpers/log-node.js';

const dev = testDevice('dev-stream');
const closers: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

type Node = LogNode;
const node = (seed: Uint8Array, peers: Uint8Array[]): Node => logNode(seed, peers, [dev], closers);

const frameBytes = dev.frame(1, 0);
const fill = (n: Node, blocks: number, perBlock: number): void => {
  for (let b = 0; b < blocks; b++) {
    const entries: FrameEntry[] = Array.from({ length: perBlock }, (_, i) => ({
      frame: frameBytes,
      rxTime: 1_760_000_000_000 + b * perBlock + i,
      transport: 'mqtt',
    }));
    n.log.appendFrames(entries);
  }
};

/** Counts envelope reads on a log (instrumentation only: behaviour unchanged). */
function countReads(log: BlockLog): { reads: number } {
  const c = { reads: 0 };
  const orig = log.getEnvelope.bind(log);
  log.getEnvelope = (h: string) => {
    c.reads++;
    return orig(h);
  };
  return c;
}

describe('streaming sync', () => {
  it('blocks are produced lazily: nothing is read before the answer is consumed, k reads for k blocks', async () => {
    const a = node(randomBytes(32), []);
    const b = node(randomBytes(32), []);
    fill(a, 300, 4);
    await a.log.settled();
    const reads = countReads(a.log);
    const s = new SyncSession(a.log);
    const hello = encodeSyncMessage({
      type: 'hello',
      digest: fromHex(b.log.headsDigest())!,
      vector: localVector(b.log),
    });
    const answer = s.receive(hello)[Symbol.iterator]();
    expect(reads.reads).toBe(0);
    expect(decodeSyncMessage(answer.next().value!).ok && s.stats.blocksSent).toBe(0); // the vector
    for (let k = 0; k < 10; k++) answer.next();
    expect(s.stats.blocksSent).toBe(10);
    expect(reads.reads).toBe(10);
  });

  it.each([
    ['plain', false],
    ['Noise-encrypted', true],
  ])(
    'over %s TCP a peer that stops reading holds the sender back (socket buffers, not the whole difference); all arrives once it reads',
    async (_, encrypted) => {
      const [sa, sb] = [randomBytes(32), randomBytes(32)];
      const [ka, kb] = [sa, sb].map(publicKeyFromSeed) as [Uint8Array, Uint8Array];
      const a = node(sa, [kb]);
      const b = node(sb, [ka]);
      // 120 blocks of 64 opaque 4 kB entries (≈ 256 kB each, ≈ 31 MB): far more than loopback
      // socket buffers hold (up to ≈ 4 MB each way here). The peer below never verifies them.
      const blob = (i: number): Uint8Array => new Uint8Array(4000).fill(i & 0xff);
      for (let k = 0; k < 120; k++)
        a.log.appendFrames(
          Array.from({ length: 64 }, (_, i) => ({
            frame: blob(k + i),
            rxTime: 1_760_000_000_000 + k,
            transport: 'mqtt',
          })),
        );
      await a.log.settled();
      const total = a.log.blockCount();
      const reads = countReads(a.log);
      const server = await SyncServer.listen('127.0.0.1', 0, {
        log: a.log,
        identity: a.identity,
        peers: [kb],
        ...(encrypted && { noiseSecret: x25519FromEd25519Seed(sa) }),
      });
      closers.push(() => server.close());
      // b's side by hand: authenticate, send hello, then stop reading.
      const raw: Socket = createConnection({ host: '127.0.0.1', port: server.port });
      await new Promise((r) => raw.once('connect', r));
      closers.push(() => void raw.destroy());
      const socket: Duplex = encrypted
        ? (await secureSocket(raw, { initiator: true, staticSecret: x25519FromEd25519Seed(sb), peers: [ka] })).stream
        : raw;
      const queue = new MessageQueue();
      let buf = Buffer.alloc(0);
      let received = 0;
      let bytes = 0;
      socket.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        buf = Buffer.concat([buf, chunk]);
        while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
          const n = buf.readUInt32BE(0);
          queue.push(new Uint8Array(buf.subarray(4, 4 + n)));
          buf = buf.subarray(4 + n);
          received++;
        }
      });
      const link: MessageLink = {
        send: (m) => {
          const head = Buffer.alloc(4);
          head.writeUInt32BE(m.length);
          socket.write(Buffer.concat([head, m]));
        },
        next: () => queue.next(),
        end: async () => void socket.end(),
      };
      await authenticate(link, { log: b.log, identity: b.identity, peers: [ka], deflate: false }); // plain messages
      socket.pause();
      await link.send(
        encodeSyncMessage({ type: 'hello', digest: fromHex(b.log.headsDigest())!, vector: localVector(b.log) }),
      );
      // Let the sender run as far as it can.
      let last = -1;
      for (let i = 0; i < 50 && reads.reads !== last; i++) {
        last = reads.reads;
        await new Promise((r) => setTimeout(r, 100));
      }
      const heldBack = reads.reads;
      console.log(`paused reader: sender read ${heldBack} of ${total} blocks (${bytes} bytes taken so far)`);
      expect(heldBack).toBeGreaterThan(0);
      expect(heldBack).toBeLessThan(total / 2);
      socket.resume();
      const before = received;
      const blocks: number[] = [];
      for (;;) {
        const m = decodeSyncMessage(await queue.next());
        if (!m.ok) throw new Error(m.error.message);
        if (m.value.type === 'block') blocks.push(1);
        if (m.value.type === 'done') {
          expect(m.value.count).toBe(total);
          break;
        }
      }
      expect(blocks).toHaveLength(total);
      expect(received).toBeGreaterThan(before);
      expect(reads.reads).toBe(total);
    },
    60_000,
  );

  it('an exchange cut after k blocks resumes: the next exchange sends only the rest', async () => {
    const a = node(randomBytes(32), []);
    const bSeed = randomBytes(32);
    const b = node(bSeed, [publicKeyFromSeed(randomBytes(32))]);
    b.log.addKnownAuthor(a.identity.publicKey);
    // Distinct frames (b verifies and applies them).
    for (let k = 0; k < 40; k++)
      a.log.appendFrames(
        Array.from({ length: 8 }, (_, i) => ({
          frame: dev.frame(2, k * 8 + i),
          rxTime: 1_760_000_000_000,
          transport: 'mqtt',
        })),
      );
    await a.log.settled();
    const total = a.log.blockCount(); // 40 frames blocks + the enrolment
    // b says hello; a's answer is taken only as far as 15 blocks, then the link dies.
    const sa = new SyncSession(a.log);
    const sb = new SyncSession(b.log);
    const it = sa.receive(sb.open()[0]!)[Symbol.iterator]();
    sb.receive(it.next().value!); // vector
    for (let k = 0; k < 15; k++) sb.receive(it.next().value!);
    expect(sb.stats.applied).toBe(15);
    await b.log.settled();
    const x = await exchange(b.log, a.log);
    expect(x.responder.blocksSent).toBe(total - 15);
    expect(x.initiator.known).toBe(0); // nothing sent twice
    expect(b.log.headsDigest()).toBe(a.log.headsDigest());
  });
});
