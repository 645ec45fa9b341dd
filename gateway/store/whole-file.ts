/**
 * Small files the gateway must never leave half-written (its identity seed, queued policy
 * ops): written to a temp name in the same directory, flushed, then moved into place in one
 * step. A failure midway (ENOSPC on a full disk, a crash) leaves no file, or the old one,
 * never a torn one; the temp file is removed on any error.
 */
import { closeSync, fsyncSync, linkSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';

export interface WholeFileOptions {
  /** File mode (e.g. 0o600 for a secret). */
  readonly mode: number;
  /** Fail with EEXIST instead of replacing an existing file (a key is never overwritten). */
  readonly exclusive?: boolean;
}

export function writeFileWhole(file: string, data: string | Uint8Array, opts: WholeFileOptions): void {
  const tmp = join(dirname(file), `.${basename(file)}.${randomBytes(4).toString('hex')}.tmp`);
  const bytes = typeof data === 'string' ? Buffer.from(data) : data;
  try {
    const fd = openSync(tmp, 'wx', opts.mode);
    try {
      for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    // link fails if the name exists (exclusive); rename replaces it atomically.
    if (opts.exclusive) linkSync(tmp, file);
    else renameSync(tmp, file);
  } finally {
    try {
      unlinkSync(tmp);
    } catch {
      // renamed into place, or never created
    }
  }
}
