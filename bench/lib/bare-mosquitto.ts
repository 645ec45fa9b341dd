/**
 * A bare Mosquitto (the Debian package) for a bench's baseline: anonymous, loopback, no
 * persistence, no subscribers, so a QoS 1 PUBLISH costs it a parse and a PUBACK and nothing
 * else. Undefined when `mosquitto` is not on PATH (`npm run setup:system` installs it).
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { userInfo } from 'node:os';
import mqtt from 'mqtt';
import { freePort, waitFor } from '../../test/helpers/env.js';
import { onPath } from '../../test/helpers/system-tools.js';
import { cpuMs } from './gateway-process.js';

export interface BareMosquitto {
  readonly url: string;
  /** Its CPU seconds so far (user + system, /proc). */
  cpuSeconds(): number;
  stop(): Promise<void>;
}

export async function startBareMosquitto(dir: string): Promise<BareMosquitto | undefined> {
  if (onPath('mosquitto') === undefined) return undefined;
  const port = await freePort();
  const conf = join(dir, 'mosquitto.conf');
  // As root, mosquitto would drop to its own user: it runs as the bench's user instead.
  writeFileSync(
    conf,
    `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\nuser ${userInfo().username}\n`,
  );
  const child = spawn('mosquitto', ['-c', conf], { stdio: 'ignore' });
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
  return {
    url,
    cpuSeconds: () => cpuMs(child.pid!) / 1000,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}
