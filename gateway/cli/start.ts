/** `gateway start`: run the gateway until SIGINT/SIGTERM. */
import { parseArgs } from 'node:util';
import { Gateway } from '../gateway.js';
import type { GatewayConfig } from '../config.js';
import { createLogger, LOG_FORMATS, LOG_LEVELS, type LogFormat, type Logger, type LogLevel } from '../logger.js';
import { PartsStopError } from '../parts.js';
import { isStoreCommitFailure } from '../store/store.js';
import { commonOptions, resolveConfig, UsageError } from './args.js';

export const startHelp = `gateway start [--config FILE] [--data DIR] [--port N] [--log-level LEVEL] [--log-format F] [--no-simulate] [--small]
  Starts the embedded MQTT broker (default 127.0.0.1:1883) and ingest into the store under
  --data (default ./data). With no device configured it runs a simulated fleet of 20 devices.
  Serves the dashboard, HTTP API and /metrics on http://127.0.0.1:8080/ (config api.*); the
  admin token is api.token or the file <data>/api-token (created 0600), named in the start log.
  Without --config, ./outpost.yaml is used when present. Stops cleanly on Ctrl-C (exit 1 if a part
  failed to stop; the others still stop).
  Logs (--log-format, config log.format): auto (default) is one readable line per event on a
  terminal and JSON lines otherwise; json or pretty force one.
  --small: the memory profile for 512 MB boards (config gateway.memory: small): one verify worker,
  2 000 frames in flight; run node with --max-semi-space-size=2 too (npm run start:small).`;

/** The options `start` and `demo` share: --port (MQTT), --log-level, --log-format. */
export const runOptions = {
  port: { type: 'string' },
  'log-level': { type: 'string' },
  'log-format': { type: 'string' },
} as const;

export async function start(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { ...commonOptions, ...runOptions, 'no-simulate': { type: 'boolean' }, small: { type: 'boolean' } },
  });
  if (values.help) {
    console.log(startHelp);
    return 0;
  }
  const cfg = resolveConfig(values);
  const config = values.small ? { ...cfg, gateway: { ...cfg.gateway, memory: 'small' as const } } : cfg;
  return runGateway(config, values, { simulate: !values['no-simulate'] });
}

/**
 * Runs a gateway until SIGINT/SIGTERM: `--port` and the log flags applied to `cfg`, the
 * "ready" line logged (child processes and tests read it for the ports); `alongside` starts
 * what runs with it (the demo's fleet) and returns how to stop that, before the gateway stops.
 */
export async function runGateway(
  config: GatewayConfig,
  values: { port?: string | undefined; 'log-level'?: string | undefined; 'log-format'?: string | undefined },
  opts: { simulate: boolean; alongside?: (gw: Gateway, log: Logger) => Promise<() => Promise<void>> },
): Promise<number> {
  let cfg = config;
  if (values.port !== undefined) {
    const port = Number(values.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535)
      throw new UsageError(`--port must be 0..65535, not "${values.port}"`);
    cfg = { ...cfg, mqtt: { ...cfg.mqtt, port } };
  }
  const level = values['log-level'] ?? cfg.log.level;
  if (!LOG_LEVELS.includes(level as LogLevel))
    throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}`);
  const format = values['log-format'] ?? cfg.log.format;
  if (!LOG_FORMATS.includes(format as LogFormat))
    throw new UsageError(`--log-format must be one of ${LOG_FORMATS.join(', ')}`);
  const log = createLogger(level as LogLevel, undefined, format as LogFormat);
  process.on('unhandledRejection', (reason) => {
    if (isStoreCommitFailure(reason)) return; // already reported (and not acked) through ingest
    log.fatal({ err: reason }, 'unhandled rejection: exiting so the supervisor restarts a clean process');
    process.exit(70);
  });
  const gw = await Gateway.start(cfg, { logger: log, simulate: opts.simulate });
  const stopAlongside = opts.alongside ? await opts.alongside(gw, log) : async () => {};
  // The signal handlers go in before the ready line: a supervisor (or test) that stops the
  // gateway as soon as it reads that line must find them installed.
  let stopping = false;
  // Exit code 1 when any part failed to stop (each is logged by name; the others still stopped).
  const stopped = new Promise<number>((resolveStop) => {
    const stop = (signal: string): void => {
      if (stopping) {
        log.warn('second signal: exiting now');
        process.exit(130);
      }
      stopping = true;
      log.info({ signal }, 'stopping');
      stopAlongside()
        .then(() => gw.stop())
        .then(
          () => resolveStop(0),
          (err: unknown) => {
            const parts = err instanceof PartsStopError ? err.parts : undefined;
            log.error({ err, parts }, `stopped with errors${parts ? ` in ${parts.join(', ')}` : ''}`);
            resolveStop(1);
          },
        );
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  // Child processes and tests read this line to learn the ports.
  log.info(
    { event: 'ready', mqttPort: gw.broker?.port, apiPort: gw.api?.port, syncPort: gw.siblings?.port },
    'gateway ready',
  );
  return stopped;
}
