/** `gateway log heads` and `gateway audit verify`: the block log from the command line. */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { fromHex, parsePublicKey, publicKeyToDidKey, toHex } from '../../protocols/index.js';
import type { GatewayConfig } from '../config.js';
import type { RememberedAuthor } from '../log/authors.js';
import { auditLog } from '../log/audit.js';
import { writeAuditRecord } from '../log/audit-record.js';
import { BlockLog } from '../log/block-log.js';
import { KeyRing } from '../policy/keyring.js';
import { Store } from '../store/store.js';
import { siblingKeys } from '../sync/siblings.js';
import { commonOptions, existingIdentity, resolveConfig, UsageError } from './args.js';
import { toJson } from './json.js';

export const logHeadsHelp = `gateway log heads [--json]
  Prints the heads digest (equal on gateways holding the same blocks) and each stream's head.`;

export const auditHelp = `gateway audit verify [--trust KEY]... [--json]
  Walks every block: content hashes, prev chains, author signatures (this gateway, the
  configured sync.peers, the siblings whose blocks sync accepted here, and --trust keys,
  hex or did:key) and every device signature inside; prints each author's blocks. An
  author trusted by none of these is named with its did:key. Exit 1 on any fault. The
  outcome is kept in the data directory (last-audit.json) for gateway status and the API.`;

export function openLog(
  values: { config?: string | undefined; data?: string | undefined },
  trust: readonly string[],
  extra: { retentionFor?: (stream: string) => number | undefined } = {},
): { store: Store; log: BlockLog; cfg: GatewayConfig } {
  const cfg = resolveConfig(values);
  const dataDir = resolve(cfg.gateway.dataDir);
  const identity = existingIdentity(cfg);
  const knownAuthors = trust.map((t) => {
    const k = parsePublicKey(t);
    if (!k.ok) throw new UsageError(`--trust ${t}: ${k.error.message}`);
    return k.value;
  });
  knownAuthors.push(...siblingKeys(cfg.sync)); // the configured siblings are trusted authors too
  const store = Store.open(dataDir);
  // Opens the sealed blocks of confidential policies whose data keys are wrapped for this gateway.
  const crypto = new KeyRing({ me: { publicKey: identity.publicKey, x25519Secret: identity.x25519Secret } });
  return {
    store,
    cfg,
    log: new BlockLog(store, {
      publicKey: identity.publicKey,
      sign: identity.sign,
      crypto,
      knownAuthors,
      withheldParentsOk: cfg.policy.file !== undefined,
      ...extra,
    }),
  };
}

export async function logHeads(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { ...commonOptions, json: { type: 'boolean' } } });
  if (values.help) {
    console.log(logHeadsHelp);
    return 0;
  }
  const { store, log } = openLog(values, []);
  try {
    const digest = log.headsDigest();
    const heads = log.streamHeads();
    if (values.json) {
      console.log(
        toJson({
          digest,
          author: log.author,
          blocks: log.blockCount(),
          heads: heads.map((h) => ({ ...h, mark: log.mark(h.author, h.stream) })),
        }),
      );
      return 0;
    }
    console.log(`heads ${digest}`);
    console.log(`blocks ${log.blockCount()}, streams ${heads.length}, this gateway ${log.author}`);
    for (const h of heads) {
      const mark = log.mark(h.author, h.stream);
      console.log(
        `  ${h.author.slice(0, 16)}… ${h.stream} #${h.seq}${mark > 0 ? ` from #${mark} (retention)` : ''} lamport ${h.lamport} ${h.hashes.join(',')}${h.hashes.length > 1 ? ' EQUIVOCATION' : ''}`,
      );
    }
  } finally {
    await store.close();
  }
  return 0;
}

export async function audit(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== 'verify') throw new UsageError(`usage: ${auditHelp}`);
  const { values } = parseArgs({
    args: rest,
    options: { ...commonOptions, json: { type: 'boolean' }, trust: { type: 'string', multiple: true } },
  });
  if (values.help) {
    console.log(auditHelp);
    return 0;
  }
  const { store, log, cfg } = openLog(values, values.trust ?? []);
  try {
    const remembered = log.remembered.all();
    for (const author of remembered.keys()) log.addKnownAuthor(fromHex(author)!);
    const s = auditLog(log);
    // Kept for the operator surface; an audit of a read-only copy still reports, it only warns.
    try {
      writeAuditRecord(resolve(cfg.gateway.dataDir), s);
    } catch (err) {
      console.error(`warning: the audit's outcome was not recorded in the data directory: ${(err as Error).message}`);
    }
    const authors = [...s.byAuthor]
      .map(([author, n]) => ({ author, ...authorTrust(author, log.author, cfg, remembered, values.trust ?? []), ...n }))
      .sort(
        (a, b) => Number(b.author === log.author) - Number(a.author === log.author) || a.name.localeCompare(b.name),
      );
    if (values.json) {
      console.log(toJson({ ...s, byAuthor: undefined, authors }));
    } else {
      const rate = s.ms > 0 ? Math.round((s.deviceSignatures / s.ms) * 1000) : 0;
      console.log(
        `${s.blocks} blocks in ${s.streams} streams by ${s.authors} authors; ${s.frames} frames (${s.uniqueFrames} distinct), ${s.deviceSignatures} device signatures; ${s.equivocations} equivocations`,
      );
      if (s.sealed.blocks > 0)
        console.log(
          `${s.sealed.blocks} sealed blocks (confidential policies): ${s.sealed.opened} opened and verified inside, ${s.sealed.unreadable} without a key here (author signature and chain only)`,
        );
      console.log(`heads ${s.headsDigest}`);
      console.log(`verified in ${s.ms.toFixed(0)} ms (${rate} frames/s)`);
      for (const a of authors) {
        if (!a.trusted)
          console.log(
            `UNKNOWN AUTHOR ${a.name} (${a.author.slice(0, 16)}…): ${blocks(a.blocks)} not verified: never configured here (not in sync.peers, never accepted through sync); pass --config with it in sync.peers, or --trust ${a.name}`,
          );
        else
          console.log(
            `author ${a.author.slice(0, 16)}… ${a.name}: ${blocks(a.blocks)}${a.faulty === 0 ? ' verified' : `, ${a.faulty} with faults`}`,
          );
      }
      // Unknown authors are summed up above, not repeated per block.
      for (const f of s.faults) if (f.code !== 'unknown-author') console.log(`FAULT ${f.code} ${f.block}: ${f.detail}`);
      console.log(
        s.faults.length === 0
          ? 'ok: no faults'
          : `${s.faults.length} faults: ${Object.entries(s.faultsByCode)
              .map(([k, v]) => `${k} ${v}`)
              .join(', ')}`,
      );
    }
    return s.faults.length === 0 ? 0 : 1;
  } finally {
    await store.close();
  }
}

const blocks = (n: number): string => `${n} block${n === 1 ? '' : 's'}`;

/**
 * How the audit names an author and why it trusts its key: `trusted` false for a key it
 * does not trust, named by its did:key.
 */
function authorTrust(
  author: string,
  self: string,
  cfg: GatewayConfig,
  remembered: ReadonlyMap<string, RememberedAuthor>,
  trust: readonly string[],
): { name: string; trusted: boolean } {
  if (author === self) return { name: 'this gateway', trusted: true };
  const is = (key: string): boolean => {
    const k = parsePublicKey(key);
    return k.ok && toHex(k.value) === author;
  };
  const peer = cfg.sync.peers.find((p) => is(p.publicKey));
  if (peer) return { name: `${peer.id} (sync.peers)`, trusted: true };
  const r = remembered.get(author);
  if (r) return { name: `${r.id} (accepted through sync since ${new Date(r.since).toISOString()})`, trusted: true };
  const did = publicKeyToDidKey(fromHex(author)!);
  return trust.some(is) ? { name: `${did} (--trust)`, trusted: true } : { name: did, trusted: false };
}
