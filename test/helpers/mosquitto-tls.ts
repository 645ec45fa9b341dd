/**
 * A real Mosquitto as a cloud broker for a test: TLS only (a CA and a server certificate for
 * 127.0.0.1 / localhost made with the openssl CLI), no anonymous clients, a password file
 * made with mosquitto_passwd, persistence on (so a persistent subscriber's queued messages
 * survive a restart). `restart()` stops it (SIGTERM: it saves its database) and starts it
 * again on the same port. `users` adds logins to the password file (e.g. one per gateway).
 */
import { userInfo } from 'node:os';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { freePort, waitFor } from './env.js';

export interface TlsBroker {
  readonly url: string;
  readonly caFile: string;
  readonly ca: Buffer;
  readonly passwordFile: string;
  readonly username: string;
  readonly password: string;
  stop(): Promise<void>;
  start(): Promise<void>;
  restart(downMs: number): Promise<void>;
}

function makeCerts(dir: string): void {
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  ssl(
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-days',
    '2',
    '-subj',
    '/CN=outpost test CA',
    '-keyout',
    'ca.key',
    '-out',
    'ca.crt',
  );
  ssl(
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-subj',
    '/CN=localhost',
    '-keyout',
    'server.key',
    '-out',
    'server.csr',
  );
  writeFileSync(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  ssl(
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    'san.ext',
    '-out',
    'server.crt',
  );
}

export async function startTlsMosquitto(
  dir: string,
  opts: { users?: Record<string, string> } = {},
): Promise<TlsBroker> {
  chmodSync(dir, 0o755); // mosquitto started as root runs as its own user: it must read these files
  makeCerts(dir);
  for (const f of ['ca.crt', 'server.crt', 'server.key']) chmodSync(join(dir, f), 0o644);
  const username = 'outpost-gw';
  const password = 'correct horse battery staple';
  const passwordFile = join(dir, 'passwd');
  execFileSync('mosquitto_passwd', ['-c', '-b', passwordFile, username, password], { stdio: 'ignore' });
  execFileSync('mosquitto_passwd', ['-b', passwordFile, 'subscriber', password], { stdio: 'ignore' });
  for (const [user, pw] of Object.entries(opts.users ?? {}))
    execFileSync('mosquitto_passwd', ['-b', passwordFile, user, pw], { stdio: 'ignore' });
  chmodSync(passwordFile, 0o644);
  const secretFile = join(dir, 'gw-password');
  writeFileSync(secretFile, `${password}\n`, { mode: 0o600 });
  const port = await freePort();
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(
    conf,
    [
      `listener ${port} 127.0.0.1`,
      `cafile ${join(dir, 'ca.crt')}`,
      `certfile ${join(dir, 'server.crt')}`,
      `keyfile ${join(dir, 'server.key')}`,
      'allow_anonymous false',
      `password_file ${passwordFile}`,
      // Run as root (CI), mosquitto would drop to the `mosquitto` user, which cannot write the temp
      // dir: the session database would not be saved and a persistent subscriber would lose its queue.
      `user ${userInfo().username}`,
      'persistence true',
      `persistence_location ${dir}/`,
      'max_queued_messages 100000',
      '',
    ].join('\n'),
  );
  const ca = readFileSync(join(dir, 'ca.crt'));
  const url = `mqtts://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  const start = async (): Promise<void> => {
    child = spawn('mosquitto', ['-c', conf], { stdio: 'ignore' });
    await waitFor(
      async () => {
        const c = await mqtt
          .connectAsync(url, { ca, username, password, reconnectPeriod: 0, connectTimeout: 1000 })
          .catch(() => undefined);
        await c?.endAsync();
        return c !== undefined;
      },
      15_000,
      'mosquitto (TLS) up',
    );
  };
  const stop = async (): Promise<void> => {
    const p = child;
    child = undefined;
    if (!p || p.exitCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    await exited;
  };
  await start();
  return {
    url,
    caFile: join(dir, 'ca.crt'),
    ca,
    passwordFile: secretFile,
    username,
    password,
    stop,
    start,
    restart: async (downMs) => {
      await stop();
      await new Promise((r) => setTimeout(r, downMs));
      await start();
    },
  };
}
