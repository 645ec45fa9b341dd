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

/** What the `pg` client calls on the query it is running (pg/lib/client.js). */
interface Connection {
  query(text: string): void;
}

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

class EndTransaction {
  /** Set by the client when none is given; called once, at ReadyForQuery (or an error). */
  callback?: (err: Error | null) => void;
  /** The command tag the server answered: COMMIT, or ROLLBACK. */
  command?: string;
  private readonly done: Promise<void>;

  constructor(private readonly queued: Queued) {
    this.done = new Promise((resolve, reject) => {
      this.callback = (err) => (err ? reject(err) : resolve());
    });
  }

  result(): Promise<void> {
    return this.done;
  }

  submit(connection: Connection): void {
    this.command = undefined;
    connection.query(this.queued.error ? 'ROLLBACK' : 'COMMIT');
  }

  handleCommandComplete(msg: { text?: string }): void {
    this.command = msg.text;
  }

  handleError(err: Error): void {
    this.settle(err);
  }

  handleReadyForQuery(): void {
    this.settle(null);
  }

  private settle(err: Error | null): void {
    const cb = this.callback;
    this.callback = undefined;
    cb?.(err);
  }

  handleEmptyQuery(): void {}
  handleRowDescription(): void {}
  handleDataRow(): void {}
  handlePortalSuspended(): void {}
  handleCopyInResponse(): void {}
  handleCopyData(): void {}
}
