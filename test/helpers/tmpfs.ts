/**
 * A real tmpfs for the disk-full tests (needs root, as CI has): mounted on `<tmp>/<prefix>…/<sub>`.
 * Without root it is not mounted and the test is skipped, except in CI, where that is an error.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Tmpfs {
  /** The parent directory (for config files and the like, not on the tmpfs). */
  readonly dir: string;
  /** The mount point. */
  readonly path: string;
  readonly mounted: boolean;
  /** Unmounts (lazily: a child may still hold files) and removes the directory. */
  remove(): void;
}

export function mountTmpfs(prefix: string, sub: string, size: string, what: string): Tmpfs {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const path = join(dir, sub);
  let mounted = false;
  try {
    mkdirSync(path);
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', path], { stdio: 'ignore' });
    mounted = true;
  } catch {
    if (process.env.CI) throw new Error(`CI must be able to mount a tmpfs for ${what} (run as root)`);
  }
  return {
    dir,
    path,
    mounted,
    remove() {
      if (mounted) execFileSync('umount', ['-l', path]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
