/**
 * `COPY … FROM STDIN` through the `pg` client's own protocol (pg-copy-streams is not a
 * dependency): a query object the client runs like any other (`client.query(copy)`), which
 * writes the rows and CopyDone behind its Query message and settles at ReadyForQuery.
 * Rows are in COPY's binary format.
 */

import { type Connection, Submittable } from './pg-submittable.js';

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
  const w = new CopyWriter();
  for (const row of rows) {
    w.row(types.length);
    for (let i = 0; i < types.length; i++) w.value(types[i]!, row[i] ?? null);
  }
  return w.finish();
}

/**
 * Writes COPY's binary format field by field, so a caller can write rows straight from what it
 * decoded (no array of values, no Date, per row). `row(n)` starts a row of n fields; then one
 * call per field, in the table's column order.
 */
export class CopyWriter {
  private readonly chunks: Buffer[] = [];
  private buf = Buffer.allocUnsafe(CHUNK * 2);
  private at = HEADER.copy(this.buf, 0);

  private flush(n: number): void {
    if (this.at > 0) this.chunks.push(this.buf.subarray(0, this.at));
    this.buf = Buffer.allocUnsafe(Math.max(CHUNK * 2, n));
    this.at = 0;
  }

  private room(n: number): void {
    if (this.at + n > this.buf.length) this.flush(n);
  }

  private int64(v: number): void {
    const hi = Math.floor(v / 4_294_967_296);
    this.buf.writeInt32BE(hi, this.at);
    this.buf.writeUInt32BE(v - hi * 4_294_967_296, this.at + 4);
    this.at += 8;
  }

  row(fields: number): void {
    if (this.at >= CHUNK) this.flush(0);
    this.room(2);
    this.at = this.buf.writeInt16BE(fields, this.at);
  }

  null(): void {
    this.room(4);
    this.at = this.buf.writeInt32BE(-1, this.at);
  }

  int4(v: number): void {
    this.room(8);
    this.at = this.buf.writeInt32BE(4, this.at);
    this.at = this.buf.writeInt32BE(v, this.at);
  }

  int8(v: number): void {
    this.room(12);
    this.at = this.buf.writeInt32BE(8, this.at);
    this.int64(v);
  }

  float8(v: number): void {
    this.room(12);
    this.at = this.buf.writeInt32BE(8, this.at);
    this.at = this.buf.writeDoubleBE(v, this.at);
  }

  bool(v: boolean): void {
    this.room(5);
    this.at = this.buf.writeInt32BE(1, this.at);
    this.at = this.buf.writeUInt8(v ? 1 : 0, this.at);
  }

  /** A timestamptz from ms since the epoch (whole ms, as a Date of it would hold). */
  time(ms: number): void {
    this.room(12);
    this.at = this.buf.writeInt32BE(8, this.at);
    this.int64((Math.trunc(ms) - PG_EPOCH_MS) * 1000);
  }

  bytea(b: Uint8Array): void {
    this.room(4 + b.length);
    this.at = this.buf.writeInt32BE(b.length, this.at);
    this.buf.set(b, this.at);
    this.at += b.length;
  }

  text(s: string): void {
    const len = s.length;
    this.room(4 + len * 3); // UTF-8: at most 3 bytes per UTF-16 unit
    const buf = this.buf;
    const start = this.at + 4;
    // Short ASCII text (ids, names, hex: most of a row's text) copied by hand: Buffer.write's
    // checks and native call cost more than the copy. Anything else is written by Buffer.write.
    let i = 0;
    if (len <= 128)
      for (; i < len; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        buf[start + i] = c;
      }
    const n = i === len ? len : buf.write(s, start, 'utf8');
    buf.writeInt32BE(n, this.at);
    this.at = start + n;
  }

  /** One field of a column of type `t` (null: NULL). */
  value(t: CopyType, v: CopyValue): void {
    if (v === null) return this.null();
    switch (t) {
      case 'int4':
        return this.int4(v as number);
      case 'int8':
        return this.int8(v as number);
      case 'float8':
        return this.float8(v as number);
      case 'bool':
        return this.bool(v as boolean);
      case 'timestamptz':
        return this.time((v as Date).getTime());
      case 'bytea':
        return this.bytea(v as Uint8Array);
      default:
        return this.text(v as string);
    }
  }

  /** The stream's chunks, the trailer written. */
  finish(): Buffer[] {
    this.room(2);
    this.at = this.buf.writeInt16BE(-1, this.at);
    this.chunks.push(this.buf.subarray(0, this.at));
    return this.chunks;
  }
}

/**
 * A simple Query message of one or more statements, each `COPY … FROM STDIN` among them taking
 * its rows from the next of `streams`, in order. Every stream is written right behind the
 * Query message, before the server asks for it (CopyInResponse): the server reads its socket
 * in order, so a COPY finds its data already there, and a batch's rows go out in one go rather
 * than after a round trip the gateway may be too busy (reading the next batch) to answer. If a
 * statement fails, PostgreSQL discards the rest of the Query message and drops every CopyData
 * and CopyDone that arrives outside copy mode ("COPY Operations", Frontend/Backend Protocol),
 * so data written early is never read as anything else.
 */
export class CopyIn extends Submittable {
  constructor(
    readonly text: string,
    private readonly streams: readonly (readonly Buffer[])[],
    /** Told the outcome synchronously, before the client runs its next query (pg-queue.ts). */
    private readonly onDone?: (err: Error | null) => void,
  ) {
    super();
  }

  submit(connection: Connection): void {
    connection.query(this.text);
    for (const chunks of this.streams) {
      for (const c of chunks) connection.sendCopyFromChunk(c);
      connection.endCopyFrom();
    }
  }

  protected override settled(err: Error | null): void {
    this.onDone?.(err);
  }
}
