/**
 * The shape of a query object the `pg` client runs itself (pg/lib/client.js calls `submit`, then
 * one `handle…` per backend message), shared by the COPY and end-of-transaction steps. It
 * settles once: at ReadyForQuery, or at an error (after which the client forgets the query and
 * no ReadyForQuery reaches it).
 */

/** What the `pg` client hands `submit`: its connection (pg/lib/connection.js). */
export interface Connection {
  query(text: string): void;
  sendCopyFromChunk(chunk: Buffer): void;
  endCopyFrom(): void;
}

export abstract class Submittable {
  /**
   * Called once, at ReadyForQuery or an error. Set here because the client only sets a
   * query's callback when none is given, and `result()` must settle either way.
   */
  callback?: (err: Error | null) => void;
  private readonly done: Promise<void>;

  constructor() {
    this.done = new Promise((resolve, reject) => {
      this.callback = (err) => (err ? reject(err) : resolve());
    });
  }

  /** Settles once the client has run it: rejects with the server's (or the client's) error. */
  result(): Promise<void> {
    return this.done;
  }

  abstract submit(connection: Connection): void;

  /** Told the outcome synchronously, before the client runs its next query. */
  protected settled(_err: Error | null): void {}

  handleError(err: Error): void {
    this.settle(err);
  }

  handleReadyForQuery(): void {
    this.settle(null);
  }

  private settle(err: Error | null): void {
    const cb = this.callback;
    this.callback = undefined;
    this.settled(err);
    cb?.(err);
  }

  handleCommandComplete(_msg: { text?: string }): void {}
  handleEmptyQuery(): void {}
  handleRowDescription(): void {}
  handleDataRow(): void {}
  handlePortalSuspended(): void {}
  handleCopyInResponse(): void {}
  handleCopyData(): void {}
}
