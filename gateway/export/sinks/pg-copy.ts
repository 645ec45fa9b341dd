/**
 * `COPY … FROM STDIN` through the `pg` client's own protocol (pg-copy-streams is not a
 * dependency): a query object the client runs like any other (`client.query(copy)`), which
 * on the server's CopyInResponse writes the rows and CopyDone and settles at ReadyForQuery.
 * Rows are in COPY's binary format.
 */

/** What the `pg` client calls on the query it is running (pg/lib/client.js). */
interface Connection {
  query(text: string): void;
  sendCopyFromChunk(chunk: Buffer): void;
  endCopyFrom(): void;
}

/** One field: NULL, text, a number, a boolean, a time or bytes. */
export type CopyValue = string | number | boolean | Date | Uint8Array | null;

/** A column's type as COPY's binary format writes it (PostgreSQL docs, "COPY", Binary Format). */
export type CopyType = 'text' | 'int4' | 'int8' | 'float8' | 'bool' | 'timestamptz' | 'bytea';

/** "PGCOPY\n\377\r\n\0", flags 0, header extension length 0. */
const HEADER = Buffer.from([0x50, 0x47, 0x43, 0x4f, 0x50, 0x59, 0x0a, 0xff, 0x0d, 0x0a, 0x00, 0, 0, 0, 0, 0, 0, 0, 0]);
/** timestamptz is microseconds since 2000-01-01 UTC (integer datetimes). */
const PG_EPOCH_MS = 946_684_800_000;
const CHUNK = 65_536;

/**
 * Rows in COPY's binary format (`COPY … FROM STDIN WITH (FORMAT binary)`), in chunks of about
 * 64 KiB (one CopyData message each; a message may split a row). Binary needs no escaping and
 * no text parsing by the server; `types` gives each column's wire type. An int8 or timestamptz
 * is written from a JavaScript number, exact up to 2^53.
 */
export function copyBinary(rows: readonly (readonly CopyValue[])[], types: readonly CopyType[]): Buffer[] {
  const chunks: Buffer[] = [];
  let buf = Buffer.allocUnsafe(CHUNK * 2);
  let at = HEADER.copy(buf, 0);
  const flush = (n: number): void => {
    if (at > 0) chunks.push(buf.subarray(0, at));
    buf = Buffer.allocUnsafe(Math.max(CHUNK * 2, n));
    at = 0;
  };
  const room = (n: number): void => {
    if (at + n > buf.length) flush(n);
  };
  const int64 = (v: number): void => {
    const hi = Math.floor(v / 4_294_967_296);
    buf.writeInt32BE(hi, at);
    buf.writeUInt32BE(v - hi * 4_294_967_296, at + 4);
    at += 8;
  };
  for (const row of rows) {
    room(2);
    at = buf.writeInt16BE(types.length, at);
    for (let i = 0; i < types.length; i++) {
      const v = row[i] ?? null;
      if (v === null) {
        room(4);
        at = buf.writeInt32BE(-1, at);
        continue;
      }
      switch (types[i]) {
        case 'int4':
          room(8);
          at = buf.writeInt32BE(4, at);
          at = buf.writeInt32BE(v as number, at);
          break;
        case 'int8':
          room(12);
          at = buf.writeInt32BE(8, at);
          int64(v as number);
          break;
        case 'float8':
          room(12);
          at = buf.writeInt32BE(8, at);
          at = buf.writeDoubleBE(v as number, at);
          break;
        case 'bool':
          room(5);
          at = buf.writeInt32BE(1, at);
          at = buf.writeUInt8(v ? 1 : 0, at);
          break;
        case 'timestamptz':
          room(12);
          at = buf.writeInt32BE(8, at);
          int64(((v as Date).getTime() - PG_EPOCH_MS) * 1000);
          break;
        case 'bytea': {
          const b = v as Uint8Array;
          room(4 + b.length);
          at = buf.writeInt32BE(b.length, at);
          buf.set(b, at);
          at += b.length;
          break;
        }
        default: {
          const s = v as string;
          room(4 + s.length * 3); // UTF-8: at most 3 bytes per UTF-16 unit
          const n = buf.write(s, at + 4, 'utf8');
          buf.writeInt32BE(n, at);
          at += 4 + n;
        }
      }
    }
    if (at >= CHUNK) flush(0);
  }
  room(2);
  at = buf.writeInt16BE(-1, at);
  chunks.push(buf.subarray(0, at));
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
