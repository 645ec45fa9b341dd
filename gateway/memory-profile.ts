/**
 * Memory profiles (`gateway.memory`, `gateway start --small`): `standard` sizes the gateway for
 * a board with 1 GB or more; `small` for 512 MB boards (a Raspberry Pi Zero 2 W, a 3A+). A
 * profile only supplies defaults: a value the config file sets itself wins.
 *
 * What `small` changes, and what each buys (bench/README.md, "A small-board profile"):
 * - one verify worker at most: each worker is a V8 isolate with its own heap and young generation;
 * - 2 000 frames in flight at most instead of 20 000 (each up to `maxFrameBytes`), so a burst
 *   is refused as overloaded (devices resend) before it is held in memory;
 * - V8's young generation capped at 2 MB semi-spaces. Node sizes the heap before any of our
 *   code runs, so this one is a node option (`npm run start:small`, the Pi unit's small line):
 *   the start log warns when the process was started without it.
 */
import { availableParallelism } from 'node:os';
import type { GatewayConfig } from './config.js';

export const MEMORY_PROFILES = ['standard', 'small'] as const;

/** The node option the small profile needs, in MB per semi-space. */
const SMALL_SEMI_SPACE_MB = 2;
const SMALL_MAX_INFLIGHT = 2_000;
/** Frames accepted and not yet answered before new ones are refused as overloaded (standard; ingest's default too). */
export const DEFAULT_MAX_INFLIGHT = 20_000;

/** Verify worker threads at most: the config's number, else one per core (standard) or one (small). */
export function verifyWorkers(cfg: Pick<GatewayConfig, 'gateway' | 'ingest'>, cores = availableParallelism()): number {
  const set = cfg.ingest.verifyWorkers;
  if (set !== 'auto') return set;
  return cfg.gateway.memory === 'small' ? 1 : cores;
}

/** Frames being processed before new ones are refused as overloaded. */
export function maxInflight(cfg: Pick<GatewayConfig, 'gateway' | 'ingest'>): number {
  return cfg.ingest.maxInflight ?? (cfg.gateway.memory === 'small' ? SMALL_MAX_INFLIGHT : DEFAULT_MAX_INFLIGHT);
}

/**
 * The semi-space cap node was started with (MB), from its options and NODE_OPTIONS; undefined
 * when none was given (V8's default, 16 MB on 64-bit hosts).
 */
export function semiSpaceCapMb(execArgv: readonly string[], nodeOptions = ''): number | undefined {
  let cap: number | undefined;
  const args = [...execArgv, ...nodeOptions.split(/\s+/).filter(Boolean)];
  for (let i = 0; i < args.length; i++) {
    const m = /^--max[-_]semi[-_]space[-_]size(?:=(\d+))?$/.exec(args[i]!);
    if (!m) continue;
    const v = m[1] ?? args[i + 1];
    if (v !== undefined && /^\d+$/.test(v)) cap = Number(v); // the last one given wins, as in node
  }
  return cap;
}

/** A warning for the start log when the small profile runs with a larger young generation, else undefined. */
export function youngGenerationWarning(
  cfg: Pick<GatewayConfig, 'gateway'>,
  execArgv: readonly string[] = process.execArgv,
  nodeOptions: string | undefined = process.env.NODE_OPTIONS,
): string | undefined {
  if (cfg.gateway.memory !== 'small') return undefined;
  const cap = semiSpaceCapMb(execArgv, nodeOptions);
  if (cap !== undefined && cap <= SMALL_SEMI_SPACE_MB) return undefined;
  return `memory profile small: node was started with ${cap === undefined ? "V8's default young generation" : `--max-semi-space-size=${cap}`}; start it with --max-semi-space-size=${SMALL_SEMI_SPACE_MB} (npm run start:small, or the small line of the Pi's systemd unit) for the profile's young generation`;
}
