/**
 * GET /api/siblings: the site as this gateway syncs it. Each configured sibling's sync state
 * (gateway/sync/peer-state.ts: connected, transport, last exchange, blocks and seconds behind,
 * refusals by reason), this gateway's own forked streams (an equivocation of its own chain:
 * a restored store that authored before catching up), and the last `gateway audit verify`.
 */
import { resolve } from 'node:path';
import { readAuditRecord } from '../log/audit-record.js';
import { queryParams } from './http.js';
import type { RouteContext } from './routes.js';

const iso = (t: number | null): string | null => (t === null ? null : new Date(t).toISOString());

export function listSiblings(ctx: RouteContext, url: URL): unknown {
  queryParams(url, []);
  const { gw } = ctx;
  return {
    gateway: gw.config.gateway.id,
    sync: gw.siblings !== undefined,
    siblings: (gw.siblings?.state() ?? []).map((s) => ({
      ...s,
      lastExchangeAt: iso(s.lastExchangeAt),
      lastErrorAt: iso(s.lastErrorAt),
    })),
    ownForks: gw.blockLog.ownForks(),
    audit: readAuditRecord(resolve(gw.config.gateway.dataDir)),
  };
}
