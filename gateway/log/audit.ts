/**
 * `gateway audit verify`: walks every stored block (not trusting the indexes):
 * recomputes each content address, checks the author signature, the `prev`
 * chain and parents against the blocks actually held, and every device
 * signature inside frames blocks. Device keys come from the registry and from
 * enrolment blocks in the log. A stream may start at a low-water mark
 * (retention): the first kept block's missing `prev` is accepted when a valid
 * retention block of that stream's author sets a mark at or above it (one held
 * in the chain, or the one recorded with the mark).
 */
import { blockSigningInput, decodeSignedBlock, hashHex, type SignedBlock, toHex } from '../../protocols/index.js';
import { verifyEd25519 } from '../crypto/ed25519.js';
import type { BlockLog } from './block-log.js';
import { type BlockRef, type Fault, type FaultCode, verifyFrames, verifyHeader, type VerifyContext } from './verify.js';

export interface AuditSummary {
  readonly blocks: number;
  readonly streams: number;
  readonly authors: number;
  /** Per author (hex): its blocks and how many of them have a fault. */
  readonly byAuthor: ReadonlyMap<string, { readonly blocks: number; readonly faulty: number }>;
  readonly frames: number;
  /** Distinct (device, boot, seq) in the frames view. */
  readonly uniqueFrames: number;
  readonly deviceSignatures: number;
  readonly equivocations: number;
  /** Blocks of confidential policies: those opened here were verified inside, the rest by signature and chain only. */
  readonly sealed: { readonly blocks: number; readonly opened: number; readonly unreadable: number };
  readonly faults: readonly Fault[];
  readonly faultsByCode: Readonly<Partial<Record<FaultCode, number>>>;
  readonly ms: number;
  readonly headsDigest: string;
}

export function auditLog(log: BlockLog): AuditSummary {
  const t0 = performance.now();
  const faults: Fault[] = [];
  let decodedCount = 0;
  const refs = new Map<string, BlockRef>();
  const enrolled = new Map<string, Uint8Array[]>();
  // Marks backed by a retention block whose author signature verifies.
  const marks = new Map<string, number>();
  const markFrom = (sb: SignedBlock): void => {
    const b = sb.block;
    if (
      b.kind !== 'retention' ||
      !log.ctx.isKnownAuthor(b.author) ||
      !verifyEd25519(b.author, blockSigningInput(sb.hash), sb.signature)
    )
      return;
    const k = `${toHex(b.author)}/${b.stream}`;
    marks.set(k, Math.max(marks.get(k) ?? 0, b.body.low));
  };
  for (const m of log.markRecords()) {
    const d = decodeSignedBlock(m.envelope);
    if (d.ok) markFrom(d.value);
  }
  // Pass 1: decode everything and index blocks by the hash of their bytes.
  for (const { key, envelope } of log.rawBlocks()) {
    const d = decodeSignedBlock(envelope);
    if (!d.ok) {
      faults.push({ code: 'malformed', block: key, detail: `${d.error.code}: ${d.error.message}` });
      continue;
    }
    const sb = d.value;
    const b = sb.block;
    decodedCount++;
    const ref = { author: toHex(b.author), stream: b.stream, seq: b.seq, lamport: b.lamport };
    refs.set(hashHex(sb.hash), ref);
    // A block whose bytes no longer match its key is reported there (hash-mismatch), not
    // again as a missing prev on every block after it.
    if (!refs.has(key)) refs.set(key, ref);
    markFrom(sb);
    if (b.kind === 'enrolment') enrolled.set(b.body.device, [...(enrolled.get(b.body.device) ?? []), b.body.publicKey]);
  }
  const ctx: VerifyContext = {
    isKnownAuthor: log.ctx.isKnownAuthor,
    // The registry's key; for devices not enrolled here, keys from the enrolment blocks actually held.
    deviceKeys: (d) => {
      const own = log.registryKeys(d);
      return own.length > 0 ? own : (enrolled.get(d) ?? []);
    },
    lookup: (h) => refs.get(h),
    mark: (a, st) => marks.get(`${a}/${st}`) ?? 0,
    danglingParentsOk: () => marks.size > 0 || log.withheldParentsOk,
  };
  // Pass 2: verify each block against the blocks actually held (decoded again, so memory
  // holds only the small per-block references, not every frame of the log).
  let frames = 0;
  const streams = new Set<string>();
  const byAuthor = new Map<string, { blocks: number; faulty: number }>();
  const sealed = { blocks: 0, opened: 0, unreadable: 0 };
  for (const { key, envelope } of log.rawBlocks()) {
    const d = decodeSignedBlock(envelope);
    if (!d.ok) continue; // reported in pass 1
    const sb: SignedBlock = d.value;
    const faultsBefore = faults.length;
    faults.push(...verifyHeader(sb, ctx, key));
    // A sealed block: its device signatures are checked where it opens; elsewhere signature and chain only.
    let b = sb.block;
    if (b.kind === 'sealed') {
      sealed.blocks++;
      const o = log.openSealed(b);
      if (o.ok) {
        sealed.opened++;
        b = o.value;
      } else {
        sealed.unreadable++;
        if (o.error.code !== 'sealed/no-key')
          faults.push({ code: 'sealed-body', block: key, detail: `${o.error.code}: ${o.error.message}` });
      }
    }
    faults.push(...verifyFrames({ ...sb, block: b }, ctx, key));
    if (b.kind === 'frames') frames += b.body.length;
    const mine = byAuthor.get(toHex(b.author)) ?? { blocks: 0, faulty: 0 };
    byAuthor.set(toHex(b.author), {
      blocks: mine.blocks + 1,
      faulty: mine.faulty + (faults.length > faultsBefore ? 1 : 0),
    });
    streams.add(`${toHex(b.author)}/${b.stream}`);
  }
  let uniqueFrames = 0;
  for (const _ of log.frameView()) uniqueFrames++;
  const faultsByCode: Partial<Record<FaultCode, number>> = {};
  for (const f of faults) faultsByCode[f.code] = (faultsByCode[f.code] ?? 0) + 1;
  return {
    blocks: decodedCount + (faultsByCode.malformed ?? 0),
    streams: streams.size,
    authors: byAuthor.size,
    byAuthor,
    frames,
    uniqueFrames,
    deviceSignatures: frames,
    equivocations: log.equivocations().length,
    sealed,
    faults,
    faultsByCode,
    ms: performance.now() - t0,
    headsDigest: log.headsDigest(),
  };
}
