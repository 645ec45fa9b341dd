/**
 * A PATH without some commands, for tests of what a machine lacking system tools sees:
 * one directory of symlinks to every executable on the current PATH except the named
 * ones; `node` is always this process's node.
 */
import { existsSync, mkdirSync, readdirSync, symlinkSync } from 'node:fs';
import { delimiter, join } from 'node:path';

export function strippedPath(dir: string, without: readonly string[], path = process.env.PATH ?? ''): string {
  const bin = join(dir, 'bin');
  mkdirSync(bin, { recursive: true });
  const drop = new Set(without);
  symlinkSync(process.execPath, join(bin, 'node'));
  for (const d of path.split(delimiter)) {
    if (d === '' || !existsSync(d)) continue;
    for (const name of readdirSync(d)) {
      if (drop.has(name) || existsSync(join(bin, name))) continue;
      symlinkSync(join(d, name), join(bin, name));
    }
  }
  return bin;
}
