/**
 * A bare Mosquitto (the Debian package) for a bench's baseline: anonymous, loopback, no
 * persistence, no subscribers, so a QoS 1 PUBLISH costs it a parse and a PUBACK and nothing
 * else (the tests' plain broker, test/helpers/mosquitto.ts). Undefined when `mosquitto` is not on
 * PATH (`npm run setup:system` installs it).
 */
import { spawnMosquitto } from '../../test/helpers/mosquitto.js';
import { killAndWait } from '../../test/helpers/pty.js';
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
  const { url, proc } = await spawnMosquitto(dir);
  return {
    url,
    cpuSeconds: () => cpuMs(proc.pid!) / 1000,
    stop: () => killAndWait(proc, 'SIGTERM'),
  };
}
