/** Shared CLI plumbing: typed usage errors, time parsing, config resolution, waiting on queued requests. */
import { existsSync } from 'node:fs';
import { parseDuration } from '../../protocols/index.js';
import { resolve } from 'node:path';
import { type GatewayConfig, loadConfig, validateConfig } from '../config.js';
import { GatewayIdentity } from '../identity.js';
import { FreeSpaceGuard } from '../store/free-space.js';
import { awaitPending } from '../store/pending-folder.js';

/** A usage error: printed without a stack trace, exit code 2. */
export class UsageError extends Error {
  readonly exitCode = 2;
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Thrown for an operational failure the user can act on: message only, exit code 1. */
export class CliError extends Error {
  readonly exitCode = 1;
}

/**
 * Parses a point in time into epoch ms: a duration with its unit (`15m`, `7d`, protocols/duration.ts)
 * means that long ago; digits alone are epoch milliseconds (a time, so not the bare-number-is-seconds
 * of a duration); anything else is read as a date (ISO 8601).
 */
export function parseTime(text: string, flag: string, now = Date.now()): number {
  if (/^\d+$/.test(text)) return Number(text);
  const ago = /[a-z]$/.test(text) ? parseDuration(text) : undefined;
  if (ago !== undefined && Number.isFinite(ago)) return now - ago;
  const t = Date.parse(text);
  if (Number.isNaN(t))
    throw new UsageError(`${flag}: "${text}" is not a time (use 15m, 2h, 7d, an ISO date, or epoch ms)`);
  return t;
}

/** The config from --config, else ./outpost.yaml if present, else defaults; --data overrides the data dir. */
export function resolveConfig(opts: { config?: string | undefined; data?: string | undefined }): GatewayConfig {
  let cfg: GatewayConfig;
  if (opts.config !== undefined) cfg = loadConfig(opts.config);
  else if (existsSync('outpost.yaml')) cfg = loadConfig('outpost.yaml');
  else cfg = validateConfig({});
  if (opts.data !== undefined) cfg = { ...cfg, gateway: { ...cfg.gateway, dataDir: opts.data } };
  return cfg;
}

export const commonOptions = {
  config: { type: 'string', short: 'c' },
  data: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** The free-space guard of the config's data directory, for a command about to write there (DiskLowError when refused). */
export function dataDirSpace(cfg: GatewayConfig): FreeSpaceGuard {
  return new FreeSpaceGuard(resolve(cfg.gateway.dataDir), { minFreeBytes: cfg.ingest.minFreeBytes });
}

/** The identity of the config's data directory for a read-only command, which never creates one. */
export function existingIdentity(cfg: GatewayConfig): GatewayIdentity {
  const dataDir = resolve(cfg.gateway.dataDir);
  const identity = GatewayIdentity.loadExisting(cfg.gateway.id, dataDir);
  if (!identity) throw new CliError(`no gateway identity in ${dataDir} (start the gateway once)`);
  return identity;
}

/** `--wait S`: seconds to wait for the running gateway to log a queued request (0 when absent). */
export function parseWait(text: string | undefined): number {
  const s = text === undefined ? 0 : Number(text);
  if (!Number.isFinite(s) || s < 0) throw new UsageError('--wait must be seconds');
  return s;
}

/**
 * After queueing `file` in a pending folder: with no wait, says so; else waits up to `seconds`
 * for the gateway to log it (exit 0) or refuse it (CliError with its reason).
 */
export async function reportQueued(
  file: string,
  seconds: number,
  say: { queued: string; logged: string; dataDir: string },
): Promise<number> {
  if (seconds === 0) {
    console.log(say.queued);
    return 0;
  }
  const r = await awaitPending(file, seconds);
  if (r.state === 'refused') throw new CliError(`the gateway refused it: ${r.reason}`);
  if (r.state === 'waiting')
    throw new CliError(`queued but not logged within ${seconds}s (is the gateway running on ${say.dataDir}?)`);
  console.log(say.logged);
  return 0;
}
