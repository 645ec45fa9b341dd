/**
 * One gateway process per data directory: `gateway start` holds an exclusive lock on
 * `<dataDir>/gateway.lock` for its whole life, so a second start on the same directory is
 * refused (naming the first process) before it writes anything; two processes would author
 * blocks on the same chains under one identity.
 *
 * The lock is flock(2) on that file. The kernel releases it when the process dies, however
 * it dies (a SIGKILL leaves nothing stale), and it belongs to the file itself: it holds across
 * network and mount namespaces and bind mounts (two containers sharing the volume), which an
 * abstract unix socket named after the path would not (scoped to a network namespace, and to
 * one spelling of the path), nor can another local user squat it. An O_EXCL pid file is not
 * released by the kernel, and lmdb's own lock file only serialises write transactions. Node
 * has no flock(), so util-linux's flock(1) takes it on our descriptor (passed as its fd 3):
 * a flock belongs to the open file description, which this process keeps open after flock(1)
 * exits. Node opens files close-on-exec, so child processes (the simulated fleet) do not
 * inherit it.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, constants, ftruncateSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export class DataDirLockError extends Error {
  override readonly name = 'DataDirLockError';
  constructor(
    /** `store/locked`: another process holds it; `store/lock-failed`: it could not be taken. */
    readonly code: 'store/locked' | 'store/lock-failed',
    message: string,
    /** The holder's pid, as it wrote it in the lock file. */
    readonly holderPid?: number,
  ) {
    super(message);
  }
}

export class DataDirLock {
  private constructor(
    readonly file: string,
    private fd: number | undefined,
  ) {}

  /** Takes the lock (creating the directory and file) or throws DataDirLockError at once. */
  static acquire(dataDir: string): DataDirLock {
    mkdirSync(dataDir, { recursive: true });
    const file = join(dataDir, 'gateway.lock');
    const fd = openSync(file, constants.O_RDWR | constants.O_CREAT, 0o644);
    const r = spawnSync('flock', ['--exclusive', '--nonblock', '3'], {
      stdio: ['ignore', 'ignore', 'pipe', fd],
      encoding: 'utf8',
    });
    if (r.status !== 0) {
      const holder = Number.parseInt(readFileSync(fd, 'utf8'), 10);
      closeSync(fd);
      if (r.status === 1) {
        const pid = Number.isSafeInteger(holder) ? holder : undefined;
        throw new DataDirLockError(
          'store/locked',
          `${dataDir} is in use by another gateway process (${pid !== undefined ? `pid ${pid}` : 'pid unknown'}): one gateway per data directory; stop that one, or give this one its own gateway.dataDir (--data)`,
          pid,
        );
      }
      const why = r.error ? `${r.error.message} (flock(1) is in util-linux)` : (r.stderr || `exit ${r.status}`).trim();
      throw new DataDirLockError('store/lock-failed', `cannot lock ${file}: ${why}`);
    }
    ftruncateSync(fd, 0);
    writeSync(fd, `${process.pid}\n`, 0);
    return new DataDirLock(file, fd);
  }

  /** Lets the directory go (idempotent); a process that dies lets it go anyway. */
  release(): void {
    if (this.fd === undefined) return;
    closeSync(this.fd);
    this.fd = undefined;
  }
}
