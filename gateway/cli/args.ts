/** Shared CLI plumbing: typed usage errors, time parsing, config resolution. */
import { existsSync } from 'node:fs';
import { type GatewayConfig, loadConfig, validateConfig } from '../config.js';

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

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses `7d`, `15m`, an ISO date, or epoch milliseconds into epoch ms. */
export function parseTime(text: string, flag: string, now = Date.now()): number {
  const rel = /^(\d+(?:\.\d+)?)([smhd])$/.exec(text);
  if (rel) return now - Number(rel[1]) * UNITS[rel[2]!]!;
  if (/^\d+$/.test(text)) return Number(text);
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
