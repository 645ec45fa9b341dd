/**
 * The local admin token: from the config, or generated once into
 * <dataDir>/api-token with mode 0600 and reused on every start.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileWhole } from '../store/whole-file.js';

export interface AdminToken {
  readonly token: string;
  /** Where it was read or written; undefined when it comes from the config. */
  readonly file?: string;
  readonly created: boolean;
}

export function loadOrCreateToken(dataDir: string, configured?: string): AdminToken {
  if (configured !== undefined) return { token: configured, created: false };
  const file = join(dataDir, 'api-token');
  if (existsSync(file)) {
    const token = readFileSync(file, 'utf8').trim();
    if (token.length >= 16) {
      chmodSync(file, 0o600);
      return { token, file, created: false };
    }
  }
  const token = randomBytes(32).toString('base64url');
  // Replaces a truncated leftover; whole or not at all, never readable by others.
  writeFileWhole(file, token + '\n', { mode: 0o600 });
  chmodSync(file, 0o600);
  return { token, file, created: true };
}

/** Constant-time check of an `Authorization: Bearer …` header. */
export function checkBearer(header: string | undefined, token: string): boolean {
  if (header === undefined) return false;
  const m = /^Bearer ([\x21-\x7e]{1,512})$/.exec(header);
  if (!m) return false;
  const a = Buffer.from(m[1]!);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}
