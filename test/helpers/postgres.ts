/**
 * A real PostgreSQL server for a test, in a temporary directory: `initdb`, then `postgres`
 * listening only on a unix socket in that directory (no TCP port, so tests need no network
 * namespace and cannot collide). PostgreSQL refuses to run as root, so as root the server
 * runs as the `postgres` system user (the Debian package creates it) through `setpriv`,
 * with the directory handed to it. `stop()` / `start()` restart the same cluster (for
 * outage tests); `remove()` stops it and deletes everything.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { postgresBinDir } from './system-tools.js';

export interface PostgresServer {
  /** Connection URL (unix socket) for the `outpost` superuser and the `postgres` database. */
  readonly url: string;
  readonly socketDir: string;
  /** A client connected to it (the caller ends it). */
  client(): Promise<pg.Client>;
  /** Fast shutdown; resolves once the server has exited. */
  stop(): Promise<void>;
  /** Starts the same cluster again; resolves once it accepts connections. */
  start(): Promise<void>;
  remove(): Promise<void>;
}

const PORT = 5432; // only names the socket file (.s.PGSQL.5432) in our own directory

function asOwner(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  return { uid, gid };
}

export async function startPostgres(): Promise<PostgresServer> {
  const bin = postgresBinDir();
  if (!bin) throw new Error('PostgreSQL is not installed (apt-get install postgresql)');
  const dir = mkdtempSync(join(tmpdir(), 'outpost-pg-'));
  const data = join(dir, 'data');
  const owner = asOwner();
  chmodSync(dir, 0o755); // root (the test) reaches the socket; the data dir inside is 0700
  if (owner) chownSync(dir, owner.uid, owner.gid);
  const run = (cmd: string, args: string[]): [string, string[]] =>
    owner
      ? [
          'setpriv',
          ['--reuid', String(owner.uid), '--regid', String(owner.gid), '--init-groups', join(bin, cmd), ...args],
        ]
      : [join(bin, cmd), args];
  const [ic, ia] = run('initdb', ['-D', data, '-U', 'outpost', '--auth=trust', '-E', 'UTF8', '--no-sync']);
  execFileSync(ic, ia, { stdio: 'ignore' });
  const url = `postgres://outpost@/postgres?host=${encodeURIComponent(dir)}&port=${PORT}`;
  let child: ChildProcess | undefined;

  const start = async (): Promise<void> => {
    const [c, a] = run('postgres', [
      '-D',
      data,
      '-k',
      dir,
      '-p',
      String(PORT),
      '-c',
      'listen_addresses=',
      '-c',
      'fsync=off',
      '-c',
      'shared_buffers=32MB',
      '-c',
      'max_connections=20',
    ]);
    const p = spawn(c, a, { stdio: ['ignore', 'ignore', 'pipe'] });
    child = p;
    let log = '';
    p.stderr!.on('data', (b: Buffer) => void (log = (log + b.toString()).slice(-4000)));
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (p.exitCode !== null) throw new Error(`postgres exited (${p.exitCode}): ${log}`);
      const cl = new pg.Client({ connectionString: url });
      try {
        await cl.connect();
        await cl.end();
        return;
      } catch {
        await cl.end().catch(() => {});
        if (Date.now() > deadline) throw new Error(`postgres did not start: ${log}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  };

  const stop = async (): Promise<void> => {
    const p = child;
    child = undefined;
    if (!p || p.exitCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    // setpriv execs postgres itself, so the signal reaches it: SIGINT is its fast shutdown (clients cut, no wait)
    p.kill('SIGINT');
    await exited;
  };

  await start();
  return {
    url,
    socketDir: dir,
    client: async () => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      return c;
    },
    stop,
    start,
    remove: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
