/**
 * `gateway status`: the site as this gateway holds it, in a terminal — its devices (enrolled
 * here or heard by siblings) with the gateway that heard each last, each sibling's blocks held
 * here and how long since the last frame it heard arrived, frames held, disk, forked own
 * streams, the last `audit verify`; and, when the gateway runs with its API on, each sibling's
 * sync state from GET /api/siblings (connected, transport, last exchange, blocks and seconds
 * behind, refusals, last error). Read from the data directory (the gateway may be running).
 */
import { existsSync, statfsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadOrCreateToken } from '../api/token.js';
import { readAuditRecord } from '../log/audit-record.js';
import type { BlockLog } from '../log/block-log.js';
import { commonOptions } from './args.js';
import { toJson } from './json.js';
import { openFrames } from './log-reader.js';
import { type StorageView, storageLine, storageView } from './status-storage.js';

export const statusHelp = `gateway status [--json] [--devices N]
  The site as this gateway holds it: devices (enrolled here or heard by siblings) with the
  gateway that heard each last, siblings (blocks held, seconds since their last frame here,
  and, if the gateway runs with its API on, connected or not, transport, last exchange, blocks
  and seconds behind, refusals, last error), frames held, disk, own forked streams, the last
  audit verify. --devices N lists at most N devices (default 50; 0 for all).`;

/** Rows looked at (newest first) to find each author's latest frame. */
const SCAN = 20_000;

export async function status(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { ...commonOptions, json: { type: 'boolean' }, devices: { type: 'string', default: '50' } },
  });
  if (values.help) {
    console.log(statusHelp);
    return 0;
  }
  const cli = openFrames(values);
  try {
    const { cfg, log, frames, authors } = cli;
    const now = Date.now();
    const ids = new Set(cli.store.devices.getKeys());
    for (const d of log.loggedDevices()) ids.add(d);
    const devices = [...ids].sort().map((id) => {
      const last = [...frames.latest(id, 1)][0];
      return {
        id,
        enrolledHere: cli.store.devices.get(id) !== undefined,
        lastFrame: last ? new Date(last.rxTime).toISOString() : null,
        heardBy: last ? authors.name(last.heardBy) : null,
      };
    });
    const latest = latestByAuthor(log);
    const live = await liveSync(cfg);
    const storage = await storageView(cfg, cli.store, log, live === undefined ? undefined : apiOf(cfg));
    const siblings = cfg.sync.peers.map((p) => {
      const key = authors.resolve(p.id)!;
      const blocks = log
        .streamHeads()
        .filter((h) => h.author === key)
        .reduce((n, h) => n + h.seq + 1, 0);
      const t = latest.get(key);
      return {
        id: p.id,
        blocksHeld: blocks,
        lastFrameHeardBy: t === undefined ? null : new Date(t).toISOString(),
        secondsSinceLastFrame: t === undefined ? null : Math.round((now - t) / 1000),
        ...live?.get(p.id),
      };
    });
    const dataDir = resolve(cfg.gateway.dataDir);
    const fs = statfsSync(dataDir);
    const out = {
      gateway: cfg.gateway.id,
      framesHeld: frames.count(),
      devices: devices.length,
      siblings,
      disk: { storeBytes: statSync(join(dataDir, 'outpost.lmdb')).size, freeBytes: fs.bavail * fs.bsize },
      storage,
      ownForks: log
        .streamHeads()
        .filter((h) => h.author === log.author && log.forks(h.author, h.stream).length > 0)
        .map((h) => h.stream),
      audit: readAuditRecord(dataDir),
      running: live !== undefined,
      deviceList: Number(values.devices) > 0 ? devices.slice(0, Number(values.devices)) : devices,
    };
    if (values.json) console.log(toJson(out));
    else print(out);
  } finally {
    await cli.close();
  }
  return 0;
}

/** The newest receive time of a frame each author heard, among the newest rows. */
function latestByAuthor(log: BlockLog): Map<string, number> {
  const out = new Map<string, number>();
  let n = 0;
  for (const r of log.frames.query({ reverse: true })) {
    if (!out.has(r.heardBy)) out.set(r.heardBy, r.rxTime);
    if (++n >= SCAN) break;
  }
  return out;
}

/** One sibling as GET /api/siblings shows it (gateway/sync/peer-state.ts). */
interface LiveSibling {
  readonly id: string;
  readonly connected: boolean;
  readonly transport: string | null;
  readonly lastExchangeAt: string | null;
  readonly lastError: string | null;
  readonly behind: { blocks: number; seconds: number } | null;
  readonly refusals: Record<string, number>;
}

/** The running gateway's API address and admin token. */
function apiOf(cfg: ReturnType<typeof openFrames>['cfg']): { url: string; token: string } {
  const token = loadOrCreateToken(resolve(cfg.gateway.dataDir), cfg.api.token).token;
  const host = cfg.api.host === '0.0.0.0' ? '127.0.0.1' : cfg.api.host;
  return { url: `${cfg.api.tls ? 'https' : 'http'}://${host}:${cfg.api.port}`, token };
}

/** Each sibling's sync state from the running gateway's API (undefined when it does not answer). */
async function liveSync(cfg: ReturnType<typeof openFrames>['cfg']): Promise<Map<string, object> | undefined> {
  const dir = resolve(cfg.gateway.dataDir);
  if (!cfg.api.enabled || (cfg.api.token === undefined && !existsSync(join(dir, 'api-token')))) return undefined;
  const { url, token } = apiOf(cfg);
  try {
    const r = await fetch(`${url}/api/siblings`, {
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(2000),
    });
    if (!r.ok) return undefined;
    const s = (await r.json()) as { siblings: LiveSibling[] };
    return new Map(
      s.siblings.map((p) => [
        p.id,
        {
          connected: p.connected,
          transport: p.transport,
          lastExchange: p.lastExchangeAt,
          behind: p.behind,
          refusals: p.refusals,
          lastError: p.lastError,
        },
      ]),
    );
  } catch {
    return undefined;
  }
}

function siblingLine(s: Record<string, unknown>): string {
  const held =
    `${String(s.id)}  blocks held ${String(s.blocksHeld)}  last frame ${String(s.lastFrameHeardBy ?? '-')}` +
    ` (${s.secondsSinceLastFrame === null ? '-' : `${String(s.secondsSinceLastFrame)} s ago`})`;
  if (!('connected' in s)) return held;
  const behind = s.behind as LiveSibling['behind'];
  const lag = behind === null ? 'lag unknown' : `lag ${behind.blocks} blocks, ${behind.seconds} s`;
  const refusals = Object.entries(s.refusals as Record<string, number>)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
  return (
    `${held}  ${s.connected ? 'connected' : 'not connected'} (${String(s.transport ?? '-')}), ` +
    `last exchange ${String(s.lastExchange ?? '-')}, ${lag}` +
    (refusals ? `, refusals: ${refusals}` : '') +
    (s.lastError ? `, error: ${String(s.lastError)}` : '')
  );
}

function print(o: {
  gateway: string;
  framesHeld: number;
  devices: number;
  siblings: Record<string, unknown>[];
  disk: { storeBytes: number; freeBytes: number };
  storage: StorageView;
  ownForks: string[];
  audit: ReturnType<typeof readAuditRecord>;
  running: boolean;
  deviceList: { id: string; enrolledHere: boolean; lastFrame: string | null; heardBy: string | null }[];
}): void {
  const mb = (b: number): string => `${(b / 1e6).toFixed(1)} MB`;
  console.log(
    `gateway ${o.gateway}${o.running ? ' (running)' : ''}: ${o.framesHeld} frames held, ${o.devices} devices`,
  );
  console.log(`disk: store ${mb(o.disk.storeBytes)}, ${mb(o.disk.freeBytes)} free`);
  console.log(storageLine(o.storage));
  if (o.ownForks.length > 0) console.log(`own forked streams: ${o.ownForks.join(', ')}`);
  const a = o.audit;
  console.log(
    a
      ? `audit: ${a.ok ? 'clean' : `${a.faults} faults`} at ${a.at} (${a.blocks} blocks, ${a.frames} frames)`
      : 'audit: none run here (gateway audit verify)',
  );
  console.log(o.running ? 'siblings:' : 'siblings (sync state needs the running gateway with its API on):');
  for (const s of o.siblings) console.log(`  ${siblingLine(s)}`);
  console.log('devices:');
  for (const d of o.deviceList)
    console.log(
      `  ${d.id}${d.enrolledHere ? '' : ' (sibling)'}  last ${d.lastFrame ?? '-'}  heard by ${d.heardBy ?? '-'}`,
    );
}
