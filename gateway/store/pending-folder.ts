/**
 * A folder through which a CLI command hands work to the running gateway (policy ops, desired
 * settings, firmware releases and rollouts): the CLI writes each request whole (temp name, then
 * a rename, so a half-written file is never read) under a name that sorts by time; the gateway
 * drains the folder at start and every second, one drain at a time and not while the disk is
 * below its floor, and deletes a file once what it asked for is durable. A request it refuses
 * is set aside as `<name>.rejected` with the reason in `<name>.reason`. A gateway that is not
 * running drains what waits when it starts.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { extname, join } from 'node:path';
import type { Logger } from '../logger.js';
import type { FreeSpaceGuard, SpaceCheck } from './free-space.js';
import { writeFileWhole } from './whole-file.js';

/**
 * CLI side: writes one request (`<time>-<random><ext>`) whole into `<dataDir>/<folder>`;
 * returns its path. `space` refuses it (DiskLowError) while the disk is below its floor.
 */
export function queuePending(
  dataDir: string,
  folder: string,
  ext: string,
  data: string | Uint8Array,
  /** `base`: the name of another file of the same request (a release's image and manifest). */
  opts: { at?: number; space?: FreeSpaceGuard; what?: string; base?: string } = {},
): string {
  opts.space?.require(opts.what ?? `queueing a request in ${folder}`);
  const dir = join(dataDir, folder);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const base = opts.base ?? `${String(opts.at ?? Date.now()).padStart(15, '0')}-${randomBytes(6).toString('hex')}`;
  const file = join(dir, base + ext);
  writeFileWhole(file, data, { mode: 0o600, exclusive: true });
  return file;
}

export type PendingOutcome = { state: 'logged' } | { state: 'refused'; reason: string } | { state: 'waiting' };

/**
 * CLI side: waits up to `seconds` for the gateway to take a queued request: logged (the file
 * gone), refused (gone, with `<name>.reason` beside it: written before the set-aside rename),
 * or still waiting.
 */
export async function awaitPending(file: string, seconds: number): Promise<PendingOutcome> {
  const reasonFile = `${file.slice(0, file.length - extname(file).length)}.reason`;
  const until = Date.now() + seconds * 1000;
  for (;;) {
    if (!existsSync(file))
      return existsSync(reasonFile)
        ? { state: 'refused', reason: readFileSync(reasonFile, 'utf8').trim() }
        : { state: 'logged' };
    if (Date.now() >= until) return { state: 'waiting' };
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface PendingFolderOptions {
  /** Names ending in one of these are requests; the rest (rejected, reasons, temp files) are not. */
  readonly exts: readonly string[];
  /** What the requests are, for log lines ("policy op"). */
  readonly what: string;
  readonly logger: Logger;
  /** Free-space check: below the floor requests wait for a later drain. */
  readonly space?: SpaceCheck;
}

/** The gateway side: an inbox subclasses it and handles what waits in `handle`. */
export abstract class PendingFolder {
  private timer?: NodeJS.Timeout;
  private draining = false;
  /** Free-space check (the gateway may set it after start): below the floor requests wait. */
  space?: SpaceCheck;

  constructor(
    readonly dir: string,
    private readonly o: PendingFolderOptions,
  ) {
    this.space = o.space;
  }

  /** Handles the waiting requests (names sorted, oldest first); returns how many it logged. */
  protected abstract handle(names: string[]): Promise<number>;

  start(intervalMs = 1000): this {
    const run = (): void =>
      void this.drain().catch((err: unknown) =>
        this.o.logger.error({ err }, `${this.o.what} inbox: drain failed; pending requests are retried`),
      );
    run();
    this.timer = setInterval(run, intervalMs);
    this.timer.unref();
    return this;
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Handles every waiting request; resolves once what it logged is durable. */
  async drain(): Promise<number> {
    if (this.draining || (this.space && !this.space.writable())) return 0;
    this.draining = true;
    try {
      let names: string[];
      try {
        names = readdirSync(this.dir)
          .filter((n) => this.o.exts.some((e) => n.endsWith(e)))
          .sort();
      } catch {
        return 0; // no folder yet: nothing was ever queued
      }
      return names.length === 0 ? 0 : await this.handle(names);
    } finally {
      this.draining = false;
    }
  }

  /**
   * Sets a request aside: `<base><ext>` becomes `<base>.rejected` (other files of the same
   * request `<base><ext>.rejected`), with the reason in `<base>.reason`.
   */
  protected reject(base: string, reason: string, exts: readonly string[] = this.o.exts): void {
    this.o.logger.error({ file: join(this.dir, base), reason }, `${this.o.what} refused: ${reason}`);
    writeFileSync(join(this.dir, `${base}.reason`), `${reason}\n`);
    exts.forEach((ext, i) => {
      try {
        renameSync(join(this.dir, base + ext), join(this.dir, i === 0 ? `${base}.rejected` : `${base}${ext}.rejected`));
      } catch {
        // already gone
      }
    });
  }
}
