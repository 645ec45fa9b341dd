/**
 * A plain Mosquitto for one test (anonymous, loopback, no persistence), stopped when the test
 * finishes (vitest `onTestFinished`), also when it fails. Call it inside a test; the test needs
 * `needs('mosquitto')`. For TLS and passwords see mosquitto-tls.ts. `spawnMosquitto` is the same
 * broker for a caller that stops it itself (a bench's baseline).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { userInfo } from 'node:os';
import mqtt from 'mqtt';
import { onTestFinished } from 'vitest';
import { freePort, testTempDir, waitFor } from './env.js';
import { killAndWait } from './pty.js';

export interface PlainMosquitto {
  port: number;
  url: string;
  proc: ChildProcess;
}

export async function startMosquitto(): Promise<PlainMosquitto> {
  let started: ChildProcess | undefined;
  onTestFinished(() => {
    if (!started) return;
    started.kill('SIGCONT'); // a test may have frozen it (SIGSTOP): a stopped process would not end
    return killAndWait(started, 'SIGTERM');
  });
  return spawnMosquitto(testTempDir('outpost-mosquitto-'), (child) => {
    started = child;
  });
}

/** Writes its config into `dir`, starts it and waits until it takes a connection; stopped (SIGTERM) if it never does. */
export async function spawnMosquitto(
  dir: string,
  onSpawn: (child: ChildProcess) => void = () => {},
): Promise<PlainMosquitto> {
  const port = await freePort();
  const conf = join(dir, 'mosquitto.conf');
  // Started as root (CI), mosquitto would drop to its own user: it runs as the test's user instead.
  writeFileSync(
    conf,
    `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\nuser ${userInfo().username}\n`,
  );
  const child = spawn('mosquitto', ['-c', conf], { stdio: 'ignore' });
  onSpawn(child);
  const url = `mqtt://127.0.0.1:${port}`;
  try {
    await waitFor(
      async () => {
        const c = await mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 500 }).catch(() => undefined);
        await c?.endAsync();
        return c !== undefined;
      },
      10_000,
      'mosquitto up',
    );
  } catch (err) {
    await killAndWait(child, 'SIGTERM');
    throw err;
  }
  return { port, url, proc: child };
}
