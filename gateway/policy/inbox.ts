/**
 * How `gateway policy grant|revoke` hands an admin-signed op to the running
 * gateway without forking its stream: the CLI writes the op (canonical CBOR,
 * `after` empty) into `<dataDir>/policy-pending/<time>-<random>.op` (written
 * to a temp name, then renamed, so a half-written file is never read); the
 * gateway drains the folder (at start and every second), adds the ops in
 * force on the same key as `after`, logs each as a policy block on its own
 * `$acl` stream, and deletes the file once the block is durable. An op that
 * does not verify (not an admin key, bad signature, unknown policy or
 * relation) is renamed `*.rejected` with the reason beside it (`*.reason`).
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { fromHex } from '../../protocols/index.js';
import { decodePolicyOp, encodePolicyOp, type PolicyOp, policyOpBody } from '../../protocols/policy-op.js';
import type { BlockLog } from '../log/block-log.js';
import type { Logger } from '../logger.js';
import type { FreeSpaceGuard, SpaceCheck } from '../store/free-space.js';
import { writeFileWhole } from '../store/whole-file.js';
import { ACL_STREAM, type GrantState, verifyOp } from './grants.js';
import type { PolicySet } from './permissions.js';

export const PENDING_DIR = 'policy-pending';

/**
 * CLI side: queues an op for the gateway; returns the file written. `space` refuses it
 * (DiskLowError) while the disk is below its floor; the file appears whole or not at all.
 */
export function queueOp(dataDir: string, op: PolicyOp, space?: FreeSpaceGuard): string {
  const dir = join(dataDir, PENDING_DIR);
  space?.require(`queueing the policy ${op.op} of ${op.relation} on ${op.policy}`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const name = `${String(op.issuedAt).padStart(15, '0')}-${randomBytes(6).toString('hex')}`;
  const file = join(dir, `${name}.op`);
  writeFileWhole(file, encodePolicyOp({ ...op, after: [] }), { mode: 0o600, exclusive: true });
  return file;
}

/** Why an op cannot be logged under this policy set (undefined if it can). */
export function opProblem(op: PolicyOp, set: PolicySet): string | undefined {
  if (!set.policies.has(op.policy)) return `unknown policy "${op.policy}"`;
  return verifyOp(op, set.adminKeys);
}

export class PolicyInbox {
  private timer?: NodeJS.Timeout;
  private draining = false;
  /** Free-space guard (set by the gateway): on a low disk ops stay pending for a later drain. */
  space?: SpaceCheck;
  private readonly dir: string;

  constructor(
    dataDir: string,
    private readonly set: PolicySet,
    private readonly grants: GrantState,
    private readonly log: BlockLog,
    private readonly logger: Logger,
  ) {
    this.dir = join(dataDir, PENDING_DIR);
  }

  start(intervalMs = 1000): void {
    const run = (): void =>
      void this.drain().catch((err: unknown) =>
        this.logger.error({ err }, 'policy inbox: commit failed; pending ops are retried'),
      );
    run();
    this.timer = setInterval(run, intervalMs);
    this.timer.unref();
  }

  /** Logs every pending op; resolves once their blocks are durable. */
  async drain(): Promise<number> {
    if (this.draining) return 0;
    if (this.space && !this.space.writable()) return 0;
    this.draining = true;
    let logged = 0;
    try {
      let names: string[];
      try {
        names = readdirSync(this.dir)
          .filter((n) => n.endsWith('.op'))
          .sort();
      } catch {
        return 0;
      }
      const done: string[] = [];
      for (const n of names) {
        // One bad file (unreadable, vanished) must not stop the others or the gateway.
        try {
          if (this.handle(n)) {
            done.push(join(this.dir, n));
            logged++;
          }
        } catch (err) {
          this.logger.error({ file: n, err }, 'cannot process a pending policy op');
        }
      }
      if (done.length > 0) {
        // A failed commit keeps the files: they are logged again on the next drain.
        await this.log.durable();
        for (const f of done) unlinkSync(f);
      }
    } finally {
      this.draining = false;
    }
    return logged;
  }

  /** Logs one pending op (true) or sets it aside with the reason (false). */
  private handle(n: string): boolean {
    const file = join(this.dir, n);
    const d = decodePolicyOp(readFileSync(file));
    const problem = d.ok ? opProblem(d.value, this.set) : `${d.error.code}: ${d.error.message}`;
    if (problem !== undefined || !d.ok) {
      this.logger.error({ file, reason: problem }, `policy op refused: ${problem}`);
      writeFileSync(join(this.dir, n.replace(/\.op$/, '.reason')), `${problem}\n`);
      renameSync(file, file.replace(/\.op$/, '.rejected'));
      return false;
    }
    const op = d.value;
    const after = this.grants.inForce(op.principal, op.relation, op.policy).map((h) => fromHex(h)!);
    const sb = this.log.appendBlock({ kind: 'policy', body: policyOpBody({ ...op, after }) }, ACL_STREAM);
    // Counted at once (the durable listener adds it again as known), so a second op in this drain sees it.
    this.grants.addBlock(sb);
    this.logger.info(
      { op: op.op, principal: op.principal, relation: op.relation, policy: op.policy, supersedes: after.length },
      `policy ${op.op} logged: ${op.principal} ${op.relation} on ${op.policy}`,
    );
    return true;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
