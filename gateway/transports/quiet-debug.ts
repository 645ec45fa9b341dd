/**
 * mqtt-packet (aedes's parser and writer, and mqtt.js's) calls `debug(...)` several times per
 * packet. A logger of the `debug` package that is switched off still takes `...args`: an array
 * built on every call, ~36 MB over a 1 000-device firmware rollout (bench/README.md, "Firmware
 * transfer and rollouts"). Imported before aedes and mqtt (side effect only): the `debug`
 * module mqtt-packet resolves is replaced in the require cache by one that hands out a plain
 * no-op (no rest parameter, so no array) for a namespace DEBUG does not enable when it is
 * created, and the real logger otherwise. DEBUG is read at start, as `debug` itself reads it;
 * enabling a namespace later at run time (`debug.enable`) does not reach loggers made before.
 * The compiled gateway is one bundle whose package imports (aedes) run before any code of its
 * own, so bin/gateway.js runs this file on its own first (bin/launch.js `first`).
 */
import { createRequire } from 'node:module';

interface DebugFactory {
  (namespace: string): unknown;
  enabled(namespace: string): boolean;
}

const fromAedes = createRequire(createRequire(import.meta.url).resolve('aedes'));
const fromPacket = createRequire(fromAedes.resolve('mqtt-packet'));
const path = fromPacket.resolve('debug');
const real = fromPacket('debug') as DebugFactory & { quiet?: true };
const cached = fromPacket.cache[path];

if (cached && real.quiet !== true) {
  const quiet: DebugFactory = Object.assign(
    (namespace: string): unknown => {
      if (real.enabled(namespace)) return real(namespace);
      const off = (): void => {};
      return Object.assign(off, {
        enabled: false,
        namespace,
        log: off,
        extend: (sub: string, delimiter = ':') => quiet(`${namespace}${delimiter}${sub}`),
      });
    },
    real,
    { quiet: true as const },
  );
  cached.exports = quiet;
}
