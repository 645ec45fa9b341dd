/**
 * `COPY … FROM STDIN` through the `pg` client's own protocol (pg-copy-streams is not a
 * dependency): a query object the client runs like any other (`client.query(copy)`), which
 * on the server's CopyInResponse writes the rows and CopyDone and settles at ReadyForQuery.
 * Rows are in COPY's text format.
 */

/** What the `pg` client calls on the query it is running (pg/lib/client.js). */
interface Connection {
  query(text: string): void;
  sendCopyFromChunk(chunk: Buffer): void;
  endCopyFrom(): void;
}

/** One field: NULL, text, a number, a boolean, a time or bytes. */
export type CopyValue = string | number | boolean | Date | Uint8Array | null;

const ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

function field(v: CopyValue): string {
  if (v === null) return '\\N';
  if (typeof v === 'string') return /[\\\t\n\r]/.test(v) ? v.replace(/[\\\t\n\r]/g, (c) => ESCAPES[c]!) : v;
  if (typeof v === 'number') return String(v); // shortest round-trip form; Infinity and NaN as PostgreSQL spells them
  if (typeof v === 'boolean') return v ? 't' : 'f';
  if (v instanceof Date) return v.toISOString();
  return `\\\\x${Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex')}`; // bytea hex, its backslash escaped
}

/** COPY text of rows, in chunks of about 64 KiB (one CopyData message each). */
export function copyText(rows: readonly (readonly CopyValue[])[]): Buffer[] {
  const chunks: Buffer[] = [];
  let lines: string[] = [];
  let size = 0;
  for (const row of rows) {
    const line = `${row.map(field).join('\t')}\n`;
    lines.push(line);
    size += line.length;
    if (size >= 65_536) {
      chunks.push(Buffer.from(lines.join(''), 'utf8'));
      lines = [];
      size = 0;
    }
  }
  if (lines.length > 0) chunks.push(Buffer.from(lines.join(''), 'utf8'));
  return chunks;
}

export class CopyIn {
  /** Set by the client when none is given; called once, at ReadyForQuery (or a read timeout). */
  callback?: (err: Error | null) => void;
  private readonly done: Promise<void>;

  constructor(
    readonly text: string,
    private readonly chunks: readonly Buffer[],
  ) {
    this.done = new Promise((resolve, reject) => {
      this.callback = (err) => (err ? reject(err) : resolve());
    });
  }

  /** Settles once the client has run it: rejects with the server's error, if any. */
  result(): Promise<void> {
    return this.done;
  }

  submit(connection: Pick<Connection, 'query'>): void {
    connection.query(this.text);
  }

  handleCopyInResponse(connection: Connection): void {
    // After an error the server drops the rest of the copy data: all of it can be written now.
    for (const c of this.chunks) connection.sendCopyFromChunk(c);
    connection.endCopyFrom();
  }

  /** The client forgets the query on an error (no ReadyForQuery reaches it): settle now. */
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

  handleCommandComplete(): void {}
  handleEmptyQuery(): void {}
  handleRowDescription(): void {}
  handleDataRow(): void {}
  handlePortalSuspended(): void {}
  handleCopyData(): void {}
}
