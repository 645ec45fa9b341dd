/**
 * Confidential policies over real lmdb block logs and the real sync engine
 *: the author seals frames of a confidential policy and wraps its data
 * key for the readers; a relay that holds but cannot read holds only ciphertext
 * (its database file holds none of the frame bytes) yet chain-verifies and passes
 * the blocks on; a reader decrypts and verifies every device signature; a
 * revoked reader gets no key for data written after the revocation, also after
 * the author restarts.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { publicKeyFromSeed, signEd25519 } from '../../gateway/crypto/ed25519.js';
import { auditLog } from '../../gateway/log/audit.js';
import { BlockLog } from '../../gateway/log/block-log.js';
import { KeyRing } from '../../gateway/policy/keyring.js';
import { x25519FromEd25519Seed } from '../../gateway/policy/seal.js';
import { Store } from '../../gateway/store/store.js';
import { exchange } from '../../gateway/sync/engine.js';
import fc from 'fast-check';
import { type Block, decodeSignedBlock, type FrameEntry, signBlock, toHex } from '../../protocols/index.js';
import { testDevice } from '../helpers/devices.js';
import { tempDir } from '../helpers/env.js';

const door = testDevice('door-1');
const press = testDevice('press-1');

interface Node {
  name: string;
  dir: string;
  seed: Uint8Array;
  pub: Uint8Array;
  store: Store;
  log: BlockLog;
  ring: KeyRing;
  cleanup: () => void;
}

const nodes: Node[] = [];
afterEach(async () => {
  for (const n of nodes.splice(0)) {
    await n.store.close().catch(() => undefined);
    n.cleanup();
  }
});

/** Who reads `doors` right now (the author's view of the permission state). */
let doorReaders: Uint8Array[] = [];

function openLog(
  n: Pick<Node, 'seed' | 'pub' | 'dir'>,
  known: Uint8Array[],
): { store: Store; log: BlockLog; ring: KeyRing } {
  const store = Store.open(n.dir);
  for (const d of [door, press]) store.devices.putSync(d.id, { id: d.id, publicKey: d.publicKeyHex, enrolledAt: 1 });
  const ring = new KeyRing({
    me: { publicKey: n.pub, x25519Secret: x25519FromEd25519Seed(n.seed) },
    readersOf: (p) => (p === 'doors' ? doorReaders : undefined),
  });
  const log = new BlockLog(store, {
    publicKey: n.pub,
    sign: (m) => signEd25519(n.seed, m),
    knownAuthors: known,
    crypto: ring,
  });
  return { store, log, ring };
}

function cluster(names: string[]): Node[] {
  const seeds = names.map(() => new Uint8Array(randomBytes(32)));
  const pubs = seeds.map(publicKeyFromSeed);
  return names.map((name, i) => {
    const { dir, cleanup } = tempDir(`outpost-pc-${name}-`);
    const n = { name, dir, seed: seeds[i]!, pub: pubs[i]!, cleanup } as Node;
    Object.assign(n, openLog(n, pubs));
    nodes.push(n);
    return n;
  });
}

const entries = (dev: typeof door, from: number, count: number): FrameEntry[] =>
  Array.from({ length: count }, (_, i) => ({
    frame: dev.frame(1, from + i),
    rxTime: 1_760_000_000_000 + from + i,
    transport: 'mqtt',
  }));

const viewOf = (n: Node, device: string): number[] => [...n.log.frameView(device)].map((v) => v.seq);

/** The bytes of the lmdb file on disk (everything the node keeps). */
const dbBytes = (n: Node): Buffer => readFileSync(join(n.dir, 'outpost.lmdb'));

describe('confidential policies over real lmdb and the sync engine', () => {
  it('a relay that holds but cannot read holds only ciphertext; a reader decrypts and checks every device signature', async () => {
    const [author, relay, reader] = cluster(['author', 'relay', 'reader']) as [Node, Node, Node];
    doorReaders = [reader.pub];
    const doors = entries(door, 0, 20);
    const presses = entries(press, 0, 5);
    for (let i = 0; i < doors.length; i += 5) author.log.appendFrames(doors.slice(i, i + 5), 'doors');
    author.log.appendFrames(presses, 'default');
    await author.log.durable();

    // author → relay → reader: the reader never talks to the author.
    await exchange(author.log, relay.log);
    await exchange(relay.log, reader.log);
    expect(relay.log.headsDigest()).toBe(author.log.headsDigest());
    expect(reader.log.headsDigest()).toBe(author.log.headsDigest());

    // The relay: every block held and chain-verified; none of the door frames readable or on disk.
    const relayBytes = dbBytes(relay);
    for (const e of doors) expect(relayBytes.includes(Buffer.from(e.frame))).toBe(false);
    // The check can fail: frames of the non-confidential policy are there in clear.
    for (const e of presses) expect(relayBytes.includes(Buffer.from(e.frame))).toBe(true);
    // …and so are the sealed blocks themselves (we read the right file).
    const sealed = [...relay.log.hashesOfKind('sealed')];
    expect(sealed).toHaveLength(4);
    expect(relayBytes.includes(Buffer.from(relay.log.getEnvelope(sealed[0]!)!))).toBe(true);
    expect(viewOf(relay, door.id)).toEqual([]);
    expect(viewOf(relay, press.id)).toHaveLength(5);
    const ra = auditLog(relay.log);
    expect(ra.faults).toEqual([]);
    expect(ra.sealed).toEqual({ blocks: 4, opened: 0, unreadable: 4 });

    // The reader: opens every sealed block, indexes the frames, verifies each device signature.
    expect(viewOf(reader, door.id)).toEqual([...Array(20).keys()]);
    const rd = auditLog(reader.log);
    expect(rd.faults).toEqual([]);
    expect(rd.sealed).toEqual({ blocks: 4, opened: 4, unreadable: 0 });
    expect(rd.deviceSignatures).toBe(25);
    for (const h of sealed) {
      const sb = decodeSignedBlock(reader.log.getEnvelope(h)!);
      const opened = sb.ok ? reader.log.openSealed(sb.value.block) : undefined;
      expect(opened?.ok && opened.value.kind === 'frames' && opened.value.body.map((f) => toHex(f.frame))).toEqual(
        expect.arrayContaining([expect.any(String)]),
      );
    }
    // A changed ciphertext byte on the reader's disk is a fault there (the author signature breaks too).
    const env = Buffer.from(reader.log.getEnvelope(sealed[1]!)!);
    env[env.length - 80]! ^= 1;
    await reader.log.rawPut(sealed[1]!, env);
    const tampered = auditLog(reader.log);
    expect(tampered.faultsByCode['bad-signature']).toBeGreaterThanOrEqual(1);
  });

  it('mutated sealed envelopes are refused without throwing; a garbled ciphertext its author signed is held and flagged by audit (fast-check)', async () => {
    const [author, reader] = cluster(['author', 'reader']) as [Node, Node];
    doorReaders = [reader.pub];
    author.log.appendFrames(entries(door, 0, 3), 'doors');
    const last = author.log.appendFrames(entries(door, 3, 3), 'doors').at(-1)!;
    await author.log.durable();
    expect(last.block.kind).toBe('sealed');
    // Everything but the last block reaches the reader first.
    for (const [, h] of author.log.streamBlocks(author.log.author, 'doors'))
      if (h !== toHex(last.hash)) reader.log.apply(author.log.getEnvelope(h)!);
    await reader.log.durable();
    fc.assert(
      fc.property(fc.nat(last.envelope.length - 1), fc.integer({ min: 1, max: 255 }), (at, x) => {
        const env = Uint8Array.from(last.envelope);
        env[at]! ^= x;
        const r = reader.log.apply(env);
        expect(r.status).toBe('rejected');
      }),
      { numRuns: 200 },
    );
    // The author itself signs a block whose ciphertext does not open: held (its signature and chain hold), not read, flagged.
    const body = new Map(last.block.body as Map<number, unknown>) as Map<number, any>;
    const ct = Uint8Array.from(body.get(5) as Uint8Array);
    ct[0]! ^= 1;
    body.set(5, ct);
    const forged = signBlock({ ...last.block, body } as Block, (m) => signEd25519(author.seed, m));
    expect(reader.log.apply(forged.envelope).status).toBe('applied');
    await reader.log.durable();
    expect(viewOf(reader, door.id)).toEqual([0, 1, 2]);
    const a = auditLog(reader.log);
    expect(a.faultsByCode['sealed-body']).toBe(1);
    expect(a.faults[0]?.detail).toMatch(/sealed\/auth-failed/);
  });

  it('a revoked reader gets no key for data written after the revocation, also after the author restarts', async () => {
    const [author, reader, revoked, relay] = cluster(['author', 'reader', 'revoked', 'relay']) as [
      Node,
      Node,
      Node,
      Node,
    ];
    doorReaders = [reader.pub, revoked.pub];
    author.log.appendFrames(entries(door, 0, 4), 'doors');
    await author.log.durable();
    expect(author.ring.currentEpoch('doors')).toBe(0);
    for (const n of [reader, revoked]) {
      await exchange(author.log, relay.log);
      await exchange(relay.log, n.log);
    }
    expect(viewOf(revoked, door.id)).toEqual([0, 1, 2, 3]);

    // Revocation: the permission state no longer lists `revoked` as a reader.
    doorReaders = [reader.pub];
    author.ring.invalidate('doors');
    author.log.appendFrames(entries(door, 4, 4), 'doors');
    await author.log.durable();
    expect(author.ring.currentEpoch('doors')).toBe(1);

    // Restart the author: it recovers epoch 1 from its own wraps and keeps sealing under it.
    await author.store.close();
    Object.assign(author, openLog(author, [author.pub, reader.pub, revoked.pub, relay.pub]));
    expect(author.ring.currentEpoch('doors')).toBe(1);
    author.log.appendFrames(entries(door, 8, 4), 'doors');
    await author.log.durable();
    expect(author.ring.currentEpoch('doors')).toBe(1);

    for (const n of [reader, revoked]) {
      await exchange(author.log, relay.log);
      await exchange(relay.log, n.log);
      expect(n.log.headsDigest()).toBe(author.log.headsDigest());
    }
    // The revoked reader holds the new blocks (a holder may) but has no key for epoch 1.
    expect(revoked.ring.hasKey(author.pub, 'doors', 0)).toBe(true);
    expect(revoked.ring.hasKey(author.pub, 'doors', 1)).toBe(false);
    expect(viewOf(revoked, door.id)).toEqual([0, 1, 2, 3]);
    const revokedBytes = dbBytes(revoked);
    for (const e of entries(door, 4, 8)) expect(revokedBytes.includes(Buffer.from(e.frame))).toBe(false);
    for (const h of revoked.log.hashesOfKind('sealed')) {
      const sb = decodeSignedBlock(revoked.log.getEnvelope(h)!);
      const r = sb.ok ? revoked.log.openSealed(sb.value.block) : undefined;
      if (r && !r.ok) expect(r.error.code).toBe('sealed/no-key');
    }
    // No keys block names the revoked reader after the revocation.
    for (const h of author.log.hashesOfKind('keys')) {
      const sb = decodeSignedBlock(author.log.getEnvelope(h)!);
      if (!sb.ok || sb.value.block.kind !== 'keys') continue;
      const body = sb.value.block.body as Map<number, unknown>;
      const epoch = body.get(1) as number;
      const recipients = (body.get(3) as Uint8Array[][]).map((w) => toHex(w[0]!));
      expect(recipients.includes(toHex(revoked.pub))).toBe(epoch === 0);
    }
    // The remaining reader reads everything; audit on the revoked one: no faults, 2 blocks chain-only.
    expect(viewOf(reader, door.id)).toEqual([...Array(12).keys()]);
    const ra = auditLog(revoked.log);
    expect(ra.faults).toEqual([]);
    expect(ra.sealed).toEqual({ blocks: 3, opened: 1, unreadable: 2 });
  });
});
