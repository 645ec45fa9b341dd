/**
 * A transaction's statements queued on the `pg` client at once (the batch's one Query message
 * of BEGIN, COPYs and the rollups fold, then COMMIT), instead of one statement per await: the
 * client sends each as the previous one's ReadyForQuery arrives, with no turn of the gateway's
 * event loop between them.
 *
 * The last statement is chosen when its turn comes (`submit`), not when it is queued: COMMIT
 * if every statement before it succeeded, else ROLLBACK. (PostgreSQL would answer a COMMIT
 * of a failed transaction with ROLLBACK anyway; choosing it here also covers a statement the
 * client failed itself, which the server never saw.) Each step reports its outcome through a
 * callback the client calls synchronously, before it submits the next query.
 */
import type pg from 'pg';
import { type Connection, Submittable } from './pg-submittable.js';

/** The outcome of the statements queued so far: the first error, if any. */
export class Queued {
  error: Error | undefined;
  private readonly pending: Promise<void>[] = [];

  /** A callback for `client.query(config, cb)`; records the first error. */
  step(): (err: Error | null) => void {
    let settle!: () => void;
    this.pending.push(new Promise<void>((r) => (settle = r)));
    return (err) => {
      if (err) this.error ??= err;
      settle();
    };
  }

  /** Queues COMMIT, or ROLLBACK if a step failed; resolves once it ran, rejects with the first error. */
  async end(c: pg.PoolClient): Promise<void> {
    const end = new EndTransaction(this);
    void c.query(end as unknown as pg.QueryConfig);
    await Promise.all(this.pending);
    await end.result();
    if (this.error) throw this.error;
    if (end.command !== 'COMMIT') throw new Error(`transaction ended with ${end.command ?? 'nothing'}`);
  }
}

class EndTransaction extends Submittable {
  /** The command tag the server answered: COMMIT, or ROLLBACK. */
  command?: string;

  constructor(private readonly queued: Queued) {
    super();
  }

  submit(connection: Connection): void {
    this.command = undefined;
    connection.query(this.queued.error ? 'ROLLBACK' : 'COMMIT');
  }

  override handleCommandComplete(msg: { text?: string }): void {
    this.command = msg.text;
  }
}
