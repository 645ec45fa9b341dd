/**
 * Received blocks verified on the worker pool (gateway/ingest/verify-pool.ts), so every core
 * checks signatures while the main thread decodes, applies and writes. Blocks are gathered
 * into batches (those that arrive in one event-loop turn, closed at BATCH_JOBS signatures: about
 * one block of 256 frames); each batch's signatures (the author's and every frame's under its
 * device's keys) go to the pool in one call, and once they are back the batch is applied in
 * order in one turn, after the batches before it. Small batches keep the three stages
 * overlapping: the workers verify one block while the main thread decodes the next and applies
 * the one before, so neither waits for a whole flight. `BlockLog.apply` runs every check as without a pool, taking the pool's
 * answers for the signatures it covered and verifying inline whatever it did not (a device
 * whose key a block in flight enrols, a sealed block, a pool that failed), so the results and
 * fault codes are the same. At most MAX_IN_FLIGHT_BYTES of received envelopes wait unapplied,
 * and at most POOL_JOBS signatures are with the pool at once.
 */
import { blockSigningInput, decodeSignedBlock, hashHex, type SignedBlock, toHex } from '../../protocols/index.js';
import type { VerifyJob } from '../ingest/verify-pool.js';
import type { ApplyResult, BlockLog } from '../log/block-log.js';
import { parseFrame, type ParsedFrame, SignatureChecks } from '../log/frame-checks.js';

/** What verifies signatures off the main thread (the gateway's VerifyPool). */
export interface SignatureVerifier {
  verify(jobs: readonly VerifyJob[]): Promise<boolean[]>;
}

/** A batch closes at this many signatures (else at the end of the event-loop turn): a 256-frame block's. */
const BATCH_JOBS = 256;
/**
 * Signatures handed to the pool at once (a few batches: one verifying on each worker and more
 * queued behind, so the workers never wait on the main thread): ingest verifies on the same
 * pool, and its frames queue behind these alone, not behind every block in flight. A batch is
 * always taken when nothing of this session is with the pool.
 */
const POOL_JOBS = 2048;
/** Received envelopes not yet applied; past this the reader waits (`backlog`). */
export const MAX_IN_FLIGHT_BYTES = 4 * 1024 * 1024;

interface Pending {
  readonly envelope: Uint8Array;
  readonly decoded?: SignedBlock;
  readonly frames?: readonly ParsedFrame[];
  readonly checks: SignatureChecks;
}

/** Which check a pool answer belongs to: a block's author (frame -1) or a frame under a key. */
interface JobRef {
  readonly checks: SignatureChecks;
  readonly frame: number;
  readonly key: string;
}

export class BlockIntake {
  private batch: Pending[] = [];
  private jobs: VerifyJob[] = [];
  private refs: JobRef[] = [];
  private scheduled = false;
  /** Every batch flushed so far applied (in order). */
  private tail: Promise<void> = Promise.resolve();
  private bytes = 0;
  private waiters: (() => void)[] = [];
  private error: unknown;
  /** Signatures with the pool now, and the batches waiting to go (POOL_JOBS). */
  private inPool = 0;
  private readonly toPool: { jobs: number; go: () => void }[] = [];
  /** Keys enrolled by blocks received in this session (candidates for devices the log does not know yet). */
  private readonly enrolled = new Map<string, Uint8Array[]>();

  constructor(
    private readonly log: BlockLog,
    private readonly verifier: SignatureVerifier,
    private readonly onResult: (r: ApplyResult, envelope: Uint8Array) => void,
  ) {}

  /** Takes a received block; it is applied once its batch is verified. */
  push(envelope: Uint8Array): void {
    this.bytes += envelope.length;
    this.batch.push(this.prepare(envelope));
    if (this.jobs.length >= BATCH_JOBS) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.flush();
      });
    }
  }

  /** Runs `task` once every block taken before it is applied (a mark, which may prune). */
  after(task: () => void): void {
    this.flush();
    this.tail = this.tail.then(() => {
      if (this.error === undefined) task();
    });
  }

  /** While too many bytes wait unapplied: a promise resolved once they are below the bound. */
  backlog(): Promise<void> | undefined {
    if (this.bytes <= MAX_IN_FLIGHT_BYTES) return undefined;
    this.flush();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Resolves once every block taken is applied; rejects with what failed applying (the store closed). */
  async settled(): Promise<void> {
    this.flush();
    await this.tail;
    if (this.error !== undefined) throw this.error;
  }

  /** Decodes a block and queues the signature jobs it needs; a block held or by an unknown author needs none. */
  private prepare(envelope: Uint8Array): Pending {
    const checks = new SignatureChecks();
    const d = decodeSignedBlock(envelope);
    if (!d.ok) return { envelope, checks }; // apply reports it
    const sb = d.value;
    const b = sb.block;
    if (this.log.lookup(hashHex(sb.hash)) !== undefined || !this.log.ctx.isKnownAuthor(b.author))
      return { envelope, decoded: sb, checks };
    this.job({ publicKey: b.author, message: blockSigningInput(sb.hash), signature: sb.signature }, checks, -1, '');
    if (b.kind === 'enrolment') {
      const keys = this.enrolled.get(b.body.device) ?? [];
      keys.push(b.body.publicKey);
      this.enrolled.set(b.body.device, keys);
    }
    if (b.kind !== 'frames') return { envelope, decoded: sb, checks };
    const frames = b.body.map((e) => parseFrame(e.frame));
    // A block holds a few devices' frames: each one's keys (and their hex) are found once per block.
    const keysOf = new Map<string, { keys: readonly Uint8Array[]; hex: string[] }>();
    frames.forEach((p, i) => {
      if (!p.ok) return;
      let k = keysOf.get(p.device);
      if (!k) {
        const held = this.log.ctx.deviceKeys(p.device);
        const keys = held.length > 0 ? held : (this.enrolled.get(p.device) ?? []);
        keysOf.set(p.device, (k = { keys, hex: keys.map(toHex) }));
      }
      for (let j = 0; j < k.keys.length; j++)
        this.job({ publicKey: k.keys[j]!, message: p.message, signature: p.signature }, checks, i, k.hex[j]!);
    });
    return { envelope, decoded: sb, frames, checks };
  }

  /** Hands a batch's jobs to the pool once they fit under POOL_JOBS (in order); resolves when answered. */
  private submit(jobs: readonly VerifyJob[], refs: readonly JobRef[]): Promise<void> {
    return new Promise((resolve) => {
      const go = (): void => {
        this.inPool += jobs.length;
        // A pool that fails leaves the checks open: apply verifies them inline.
        void this.verifier
          .verify(jobs)
          .then(
            (results) =>
              results.forEach((ok, i) => {
                const r = refs[i]!;
                if (r.frame < 0) r.checks.author = ok;
                else r.checks.record(r.frame, r.key, ok);
              }),
            () => undefined,
          )
          .then(() => {
            this.inPool -= jobs.length;
            while (this.toPool.length > 0 && this.fits(this.toPool[0]!.jobs)) this.toPool.shift()!.go();
            resolve();
          });
      };
      if (this.toPool.length === 0 && this.fits(jobs.length)) go();
      else this.toPool.push({ jobs: jobs.length, go });
    });
  }

  private fits(jobs: number): boolean {
    return this.inPool === 0 || this.inPool + jobs <= POOL_JOBS;
  }

  private job(j: VerifyJob, checks: SignatureChecks, frame: number, key: string): void {
    this.jobs.push(j);
    this.refs.push({ checks, frame, key });
  }

  /** Sends the open batch's jobs to the pool and chains its applying after the batches before. */
  private flush(): void {
    if (this.batch.length === 0) return;
    const batch = this.batch;
    const refs = this.refs;
    const jobs = this.jobs;
    this.batch = [];
    this.refs = [];
    this.jobs = [];
    const verified = this.submit(jobs, refs);
    this.tail = Promise.all([this.tail, verified]).then(() => {
      for (const p of batch) {
        this.bytes -= p.envelope.length;
        if (this.error !== undefined) continue;
        try {
          const pre = p.decoded && { decoded: p.decoded, checks: p.checks, ...(p.frames && { frames: p.frames }) };
          this.onResult(this.log.apply(p.envelope, pre), p.envelope);
        } catch (err) {
          this.error = err;
        }
      }
      if (this.bytes <= MAX_IN_FLIGHT_BYTES) for (const w of this.waiters.splice(0)) w();
    });
  }
}
