/**
 * Fuzz campaign over the sync message handler (gateway/sync): random and mutated-valid
 * message sequences fed to a responder's SyncSession on a real lmdb block log (verifying on
 * this thread or on the verify pool), and whole
 * links (signed challenge, then messages) to `respond` over an in-memory MessageLink.
 * It must never throw out, never hang, answer only with well-formed messages, and never
 * apply anything invalid: every block it holds is one of the sibling's valid blocks, and
 * `audit verify` of its log stays clean (gateway/sync/README: "every block is verified
 * before it is applied").
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publicKeyFromSeed, signEd25519 } from '../../gateway/crypto/ed25519.js';
import { auditLog } from '../../gateway/log/audit.js';
import { BlockLog } from '../../gateway/log/block-log.js';
import { VerifyPool } from '../../gateway/ingest/verify-pool.js';
import { Store } from '../../gateway/store/store.js';
import { SyncSession } from '../../gateway/sync/engine.js';
import { authenticate, LinkError, type MessageLink, MessageQueue, respond } from '../../gateway/sync/link.js';
import { type Block, decodeSyncMessage, encodeSyncMessage, hashHex, sha256, signBlock } from '../../protocols/index.js';
import { tempDir } from '../helpers/env.js';
import { authMessages, blocks, frames, gatewayPublicKey, gatewaySeed, syncMessages } from './corpus.js';
import { budget, fuzzInput, fuzzTimeout, mutate, mutationArb } from './mutate.js';

const responderSeed = sha256(new TextEncoder().encode('outpost-fuzz-responder'));
const responderKey = publicKeyFromSeed(responderSeed);
const strangerSeed = sha256(new TextEncoder().encode('outpost-fuzz-stranger'));

/** Well-formed blocks that must be refused: an unknown author, and a sibling block carrying a frame the device did not sign. */
function badBlocks(): Uint8Array[] {
  const stranger = signBlock({ ...blocks[0]!.block, author: publicKeyFromSeed(strangerSeed) } as Block, (m) =>
    signEd25519(strangerSeed, m),
  );
  const forged = frames[0]!.slice();
  forged[forged.length - 1] = forged[forged.length - 1]! ^ 1; // the device signature's last byte
  const b1 = blocks[1]!.block as Extract<Block, { kind: 'frames' }>;
  const tampered = signBlock({ ...b1, body: [{ ...b1.body[0]!, frame: forged }, ...b1.body.slice(1)] } as Block, (m) =>
    signEd25519(gatewaySeed, m),
  );
  return [stranger.envelope, tampered.envelope].map((envelope) => encodeSyncMessage({ type: 'block', envelope }));
}

const validHashes = new Set(blocks.map((b) => hashHex(b.hash)));
let store: Store;
let log: BlockLog;
let cleanup: () => void;

beforeAll(() => {
  const t = tempDir('outpost-fuzz-sync-');
  cleanup = t.cleanup;
  store = Store.open(t.dir);
  log = new BlockLog(store, {
    publicKey: responderKey,
    sign: (m) => signEd25519(responderSeed, m),
    knownAuthors: [gatewayPublicKey],
  });
});
const verifyPool = new VerifyPool(2);
afterAll(async () => {
  await verifyPool.close();
  await store.close();
  cleanup();
});

/** Nothing but the sibling's valid blocks ever gets into the log. */
function onlyValidHeld(): void {
  for (const h of log.allHashes()) expect(validHashes.has(h)).toBe(true);
}

/** Two ends of an in-memory link; `end()` on either closes both directions. */
function linkPair(): [MessageLink, MessageLink] {
  const qa = new MessageQueue();
  const qb = new MessageQueue();
  const close = async (): Promise<void> => {
    qa.fail(new LinkError('closed', 'link closed'));
    qb.fail(new LinkError('closed', 'link closed'));
  };
  return [
    { send: (m) => qb.push(m), next: () => qa.next(), end: close },
    { send: (m) => qa.push(m), next: () => qb.next(), end: close },
  ];
}

const pool = [...syncMessages, ...badBlocks()];
// Half the messages intact: a session ends at its first malformed message, so sequences must get deep before they break.
const message = fc.oneof(
  { weight: 1, arbitrary: fuzzInput(pool, 512) },
  { weight: 1, arbitrary: fc.constantFrom(...pool) },
);
const T = fuzzTimeout(30_000);

describe('fuzz: the sync responder', () => {
  it(
    'SyncSession.receive: any message sequence → no throw, well-formed replies, nothing invalid applied',
    async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(message, { minLength: 1, maxLength: 12 }), fc.boolean(), async (msgs, pooled) => {
          // Half the sequences verify on worker threads, as a gateway's sessions do.
          const session = new SyncSession(log, undefined, pooled ? verifyPool : undefined);
          for (const m of msgs) {
            for (const out of session.receive(m)) expect(decodeSyncMessage(out).ok).toBe(true);
          }
          await session.settled();
          await log.durable();
          onlyValidHeld();
        }),
        budget(1500, 0.2),
      );
    },
    T,
  );

  it(
    'respond over a MessageLink: authenticated or not, mutated sequences end the link without throwing or hanging',
    async () => {
      const authMutation = fc.option(
        fc.tuple(fc.nat({ max: authMessages.length - 1 }), fc.array(mutationArb, { minLength: 1, maxLength: 3 })),
        { freq: 3 },
      );
      await fc.assert(
        fc.asyncProperty(authMutation, fc.array(message, { maxLength: 10 }), async (garbledAuth, msgs) => {
          const [ours, theirs] = linkPair();
          const reports: { error?: LinkError }[] = [];
          const done = respond(ours, {
            log,
            identity: { publicKey: responderKey, sign: (m) => signEd25519(responderSeed, m) },
            peers: [gatewayPublicKey],
            onLink: (r) => reports.push(r),
          });
          if (garbledAuth) {
            // Not a sibling's handshake: mutated auth messages, then the rest.
            const [i, ms] = garbledAuth;
            await theirs.send(ms.reduce((b, m) => mutate(b, m, authMessages), authMessages[i]!));
          } else {
            await authenticate(theirs, {
              log,
              identity: { publicKey: gatewayPublicKey, sign: (m) => signEd25519(gatewaySeed, m) },
              peers: [responderKey],
              deflate: false, // plain messages, as an older gateway speaks: the fuzz reaches the session
            });
          }
          for (const m of msgs) await theirs.send(m);
          await theirs.end();
          let timer: NodeJS.Timeout | undefined;
          const hung = new Promise<'hung'>((r) => (timer = setTimeout(() => r('hung'), 5000)));
          expect(await Promise.race([done.then(() => 'ended' as const), hung])).toBe('ended');
          clearTimeout(timer);
          expect(reports).toHaveLength(1);
          await log.durable();
          onlyValidHeld();
        }),
        budget(400, 0.05),
      );
      // What was applied is sound through and through, device signatures included.
      const audit = auditLog(log);
      expect(audit.faults).toEqual([]);
      expect(log.blockCount()).toBeGreaterThan(0); // the valid chain did get through at some point
    },
    T,
  );
});
