/**
 * A plain Mosquitto for one test (anonymous, loopback, no persistence), stopped when the test
 * finishes (vitest `onTestFinished`), also when it fails. Call it inside a test; the test needs
 * `needs('mosquitto')`. For TLS and passwords see mosquitto-tls.ts.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { userInfo } from 'node:os';
import mqtt from 'mqtt';
import { onTestFinished } from 'vitest';
import { freePort, testTempDir, waitFor } from './env.js';
import { killAndWait } from './pty.js';

export async function startMosquitto(): Promise<{ port: number; url: string; proc: ChildProcess }> {
  const dir = testTempDir('outpost-mosquitto-');
  const port = await freePort();
  const conf = join(dir, 'mosquitto.conf');
  // Started as root (CI), mosquitto would drop to its own user: it runs as the test's user instead.
  writeFileSync(
    conf,
    `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\nuser ${userInfo().username}\n`,
  );
  const child = spawn('mosquitto', ['-c', conf], { stdio: 'ignore' });
  onTestFinished(() => {
    child.kill('SIGCONT'); // a test may have frozen it (SIGSTOP): a stopped process would not end
    return killAndWait(child, 'SIGTERM');
  });
  const url = `mqtt://127.0.0.1:${port}`;
  await waitFor(
    async () => {
      const c = await mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 500 }).catch(() => undefined);
      await c?.endAsync();
      return c !== undefined;
    },
    10_000,
    'mosquitto up',
  );
  return { port, url, proc: child };
}
