/**
 * GET /api/devices and /api/devices/{id}: every device of the site, those enrolled here and
 * those only siblings heard (known through their enrolment blocks), each with the gateway
 * that heard its last frame. The list pages (limit/offset) and filters (id or name substring,
 * the gateway that heard it last) on the server, so a site of thousands of devices stays a
 * page of JSON; only the page's devices are rendered.
 */
import { ID_PATTERN } from '../../protocols/index.js';
import type { DeviceRecord } from '../store/store.js';
import type { DeviceView } from './device-view.js';
import { ApiError, parseIntParam, queryParams } from './http.js';
import type { RouteContext } from './routes.js';

const MAX_DEVICES_LIMIT = 1000;
const DEFAULT_DEVICES_LIMIT = 100;
const MAX_OFFSET = 1_000_000_000;

/** What a device is, here: its registry record, or only its id when a sibling enrolled it. */
type Known = { readonly id: string; readonly record?: DeviceRecord };

function deviceJson(ctx: RouteContext, d: Known, now: number): Record<string, unknown> {
  const rec = d.record;
  const last = ctx.view.lastFrame(d.id);
  // Heard here (activity) or by a sibling (the merged history's last frame): the later one.
  const seenHere = ctx.gw.activity.lastSeenAt(d.id);
  const lastSeen = Math.max(seenHere ?? -1, last?.rxTime ?? -1);
  // Online is presence, not history: for a device heard here only this process's activity
  // counts (a frame stored before a restart says nothing of now); for one a sibling heard
  // last, that sibling's frame is the only presence this gateway can know.
  const heardBySibling = last !== undefined && last.heardBy !== ctx.gw.config.gateway.id;
  const presence = Math.max(seenHere ?? -1, heardBySibling ? last.rxTime : -1);
  const revoked = rec ? rec.revokedAt !== undefined : ctx.gw.blockLog.revokedSince(d.id) !== undefined;
  const online = !revoked && presence >= 0 && now - presence <= ctx.gw.config.status.onlineTimeoutSeconds * 1000;
  const reading = (r: ReturnType<DeviceView['battery']>) =>
    r ? { name: r.name, value: r.value, unit: r.unit ?? null } : null;
  return {
    id: d.id,
    name: rec?.name ?? null,
    site: rec?.site ?? null,
    model: rec?.model ?? null,
    ...(rec && { enrolledAt: new Date(rec.enrolledAt).toISOString() }),
    enrolledHere: rec !== undefined,
    revoked,
    online,
    lastSeen: lastSeen >= 0 ? new Date(lastSeen).toISOString() : null,
    heardBy: last?.heardBy ?? null,
    lastFrame: last ? { ...last, rxTime: new Date(last.rxTime).toISOString() } : null,
    battery: reading(ctx.view.battery(d.id)),
    signal: reading(ctx.view.signal(d.id)),
    readings: ctx.view.readings(d.id).map((r) => ({
      name: r.name,
      value: r.value,
      unit: r.unit ?? null,
      at: new Date(r.at).toISOString(),
      history: r.history,
    })),
    rejections: ctx.view.rejections(d.id),
    // Desired vs reported settings and the keys still pending (gateway/settings), or null.
    settings: ctx.gw.settings?.view(d.id) ?? null,
  };
}

/** GET /api/devices?limit&offset&q&heardBy */
export function listDevices(ctx: RouteContext, url: URL): unknown {
  const q = queryParams(url, ['limit', 'offset', 'q', 'heardBy']);
  const limit = parseIntParam('limit', q.get('limit'), 1, MAX_DEVICES_LIMIT, DEFAULT_DEVICES_LIMIT);
  const offset = parseIntParam('offset', q.get('offset'), 0, MAX_OFFSET, 0);
  const text = q.get('q');
  if (text !== undefined && text.length > 64) throw new ApiError(400, 'bad-query', 'q is at most 64 characters');
  const by = q.get('heardBy');
  const byKey = by === undefined ? undefined : ctx.gw.authors.resolve(by);
  if (by !== undefined && byKey === undefined)
    throw new ApiError(400, 'bad-query', 'heardBy must be a gateway id of the config, a did:key or a hex key');
  const byName = byKey === undefined ? undefined : ctx.gw.authors.name(byKey);
  const needle = text?.toLowerCase();
  const matching = ctx.view.siteDevices().filter((id) => {
    if (byName !== undefined && ctx.view.lastFrame(id)?.heardBy !== byName) return false;
    if (needle === undefined || id.toLowerCase().includes(needle)) return true;
    return ctx.gw.registry.get(id)?.name?.toLowerCase().includes(needle) ?? false;
  });
  const now = Date.now();
  return {
    onlineTimeoutSeconds: ctx.gw.config.status.onlineTimeoutSeconds,
    total: matching.length,
    offset,
    limit,
    devices: matching
      .slice(offset, offset + limit)
      .map((id) => deviceJson(ctx, { id, record: ctx.gw.registry.get(id) }, now)),
    // Senders that are not enrolled but whose frames were refused (unknown kid, forged topic).
    unknown: ctx.view.unknownDevices().map((id) => ({ id, rejections: ctx.view.rejections(id) })),
  };
}

/** GET /api/devices/{id}: a device enrolled here or by a sibling. */
export function getDevice(ctx: RouteContext, url: URL, id: string): unknown {
  queryParams(url, []);
  if (!ID_PATTERN.test(id)) throw new ApiError(400, 'bad-device-id', `device id must match ${ID_PATTERN.source}`);
  const record = ctx.gw.registry.get(id);
  if (!record && ctx.gw.blockLog.loggedKeys(id).length === 0)
    throw new ApiError(404, 'unknown-device', `no device "${id}" is enrolled here or by a sibling`);
  return deviceJson(ctx, { id, record }, Date.now());
}
