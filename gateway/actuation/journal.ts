/**
 * The audit trail in the log: actuation records (leases, decisions, outcomes) queued in one
 * event-loop turn become one signed `actuation` block (kind 5) on this gateway's stream, so a
 * burst of decisions costs one signature, not one each. Blocks are authored inside the ingest
 * commit loop, so they never chain onto a frames block whose commit is in doubt. Also reads leases back from the log:
 * at start from the blocks already held, and from every sibling block as sync applies it.
 */
import { type Block, type CborValue, decodeSignedBlock, type SignedBlock, toHex } from '../../protocols/index.js';
import {
  actuationBody,
  type ActuationRecord,
  decodeActuationBody,
  MAX_ACTUATION_RECORDS,
} from '../../protocols/actuation.js';
import type { ActuationJournal, AuditBlock } from '../../rules/actuation/index.js';
import { DEFAULT_POLICY, type BlockLog } from '../log/block-log.js';
import type { Logger } from '../logger.js';

export class LogJournal implements ActuationJournal {
  private queue: ActuationRecord[] = [];
  private scheduled = false;
  blocks = 0;
  records = 0;
  failures = 0;

  constructor(
    private readonly log: BlockLog,
    private readonly logger: Logger,
    /** Where blocks are authored: the ingest commit loop (IngestPipeline.appendInCommit), else at once. */
    private readonly inCommit: (author: () => void) => void = (a) => a(),
    private readonly policy = DEFAULT_POLICY,
  ) {}

  record(records: readonly ActuationRecord[]): void {
    this.queue.push(...records);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  /** Hands what is queued now to be written (also called on stop). */
  flush(): void {
    this.scheduled = false;
    if (this.queue.length > 0) this.inCommit(() => this.write());
  }

  private write(): void {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, MAX_ACTUATION_RECORDS);
      const body = this.body(batch);
      if (body === undefined) continue;
      try {
        this.log.appendBlock({ kind: 'actuation', body }, this.policy);
        this.blocks++;
        this.records += body.length;
      } catch (err) {
        // Losing the audit of one batch must not stop actuation.
        this.failures++;
        this.logger.error({ err, records: batch.length }, 'actuation records not logged');
      }
    }
  }

  /**
   * The batch's block body. A record that does not encode (a decision whose templated device
   * came out empty, say) is refused alone, so the others are still audited.
   */
  private body(batch: ActuationRecord[]): CborValue[] | undefined {
    try {
      return actuationBody(batch) as unknown as CborValue[];
    } catch {
      const good = batch.filter((r) => {
        try {
          actuationBody([r]);
          return true;
        } catch (err) {
          this.failures++;
          const rule = r.type === 'decision' ? r.rule : undefined;
          this.logger.error({ err, type: r.type, rule }, `actuation record not logged: ${(err as Error).message}`);
          return false;
        }
      });
      return good.length > 0 ? (actuationBody(good) as unknown as CborValue[]) : undefined;
    }
  }
}

/** The records of an actuation block, or undefined for another kind or a body that does not decode. */
function actuationRecords(block: Block): ActuationRecord[] | undefined {
  if (block.kind !== 'actuation') return undefined;
  const r = decodeActuationBody(block.body as CborValue);
  return r.ok ? r.value : undefined;
}

/** Every actuation block held, as the audit reader takes them (optionally only records at or after `since`). */
export function* actuationBlocks(log: BlockLog): Generator<AuditBlock & { readonly hash: string }> {
  // Each stream in chain order (a later outcome of a command supersedes an earlier one).
  const held = [...log.hashesOfKind('actuation')]
    .map((hash) => ({ hash, at: log.lookup(hash) }))
    .filter((b) => b.at !== undefined)
    .sort(
      (a, b) =>
        cmp(a.at!.author, b.at!.author) ||
        cmp(a.at!.stream, b.at!.stream) ||
        a.at!.seq - b.at!.seq ||
        cmp(a.hash, b.hash),
    );
  for (const { hash, at } of held) {
    const sb = decodeSignedBlock(log.getEnvelope(hash) ?? new Uint8Array());
    const records = sb.ok ? actuationRecords(sb.value.block) : undefined;
    if (records) yield { author: at!.author, body: records, hash };
  }
}

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Lease records of a durable block, with its author (hex). */
export function leasesOf(sb: SignedBlock): { holder: string; records: ActuationRecord[] } | undefined {
  const records = actuationRecords(sb.block);
  return records ? { holder: toHex(sb.block.author), records: records.filter((r) => r.type === 'lease') } : undefined;
}
