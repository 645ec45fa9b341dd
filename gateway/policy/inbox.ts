/**
 * How `gateway policy grant|revoke` hands an admin-signed op to the running gateway without
 * forking its stream, through a pending folder (gateway/store/pending-folder.ts): the CLI
 * queues the op (canonical CBOR, `after` empty) as `<dataDir>/policy-pending/<time>-<random>.op`;
 * the gateway adds the ops in force on the same key as `after`, logs each as a policy block on
 * its own `$acl` stream and deletes the file once the block is durable. An op that does not
 * verify (not an admin key, bad signature, unknown policy or relation) is set aside as
 * `*.rejected` with the reason in `*.reason`.
 */
import { readFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { fromHex } from '../../protocols/index.js';
import { decodePolicyOp, encodePolicyOp, type PolicyOp, policyOpBody } from '../../protocols/policy-op.js';
import type { BlockLog } from '../log/block-log.js';
import type { Logger } from '../logger.js';
import type { FreeSpaceGuard } from '../store/free-space.js';
import { PendingFolder, queuePending } from '../store/pending-folder.js';
import { ACL_STREAM, type GrantState, verifyOp } from './grants.js';
import type { PolicySet } from './permissions.js';

export const PENDING_DIR = 'policy-pending';

/**
 * CLI side: queues an op for the gateway; returns the file written. `space` refuses it
 * (DiskLowError) while the disk is below its floor; the file appears whole or not at all.
 */
export function queueOp(dataDir: string, op: PolicyOp, space?: FreeSpaceGuard): string {
  return queuePending(dataDir, PENDING_DIR, '.op', encodePolicyOp({ ...op, after: [] }), {
    at: op.issuedAt,
    space,
    what: `queueing the policy ${op.op} of ${op.relation} on ${op.policy}`,
  });
}

/** Why an op cannot be logged under this policy set (undefined if it can). */
export function opProblem(op: PolicyOp, set: PolicySet): string | undefined {
  if (!set.policies.has(op.policy)) return `unknown policy "${op.policy}"`;
  return verifyOp(op, set.adminKeys);
}

export class PolicyInbox extends PendingFolder {
  constructor(
    dataDir: string,
    private readonly set: PolicySet,
    private readonly grants: GrantState,
    private readonly log: BlockLog,
    private readonly logger: Logger,
  ) {
    super(join(dataDir, PENDING_DIR), { exts: ['.op'], what: 'policy op', logger });
  }

  protected async handle(names: string[]): Promise<number> {
    const done: string[] = [];
    for (const n of names) {
      // One bad file (unreadable, vanished) must not stop the others or the gateway.
      try {
        if (this.handleOne(n)) done.push(join(this.dir, n));
      } catch (err) {
        this.logger.error({ file: n, err }, 'cannot process a pending policy op');
      }
    }
    if (done.length > 0) {
      // A failed commit keeps the files: they are logged again on the next drain.
      await this.log.durable();
      for (const f of done) unlinkSync(f);
    }
    return done.length;
  }

  /** Logs one pending op (true) or sets it aside with the reason (false). */
  private handleOne(n: string): boolean {
    const d = decodePolicyOp(readFileSync(join(this.dir, n)));
    const problem = d.ok ? opProblem(d.value, this.set) : `${d.error.code}: ${d.error.message}`;
    if (problem !== undefined || !d.ok) {
      this.reject(n.slice(0, -'.op'.length), problem ?? 'refused');
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
}
