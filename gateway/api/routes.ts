/** The API's JSON routes: frames, status, whoami (devices.ts, siblings.ts: the site). Each takes the parsed URL and returns a body or throws ApiError. */
import { ID_PATTERN } from '../../protocols/index.js';
import type { ApiSource } from './source.js';
import { type FrameRow, formatCursor, parseCursor } from '../log/frames-index.js';
import { FramesJson } from './frames-json.js';
import type { DeviceView } from './device-view.js';
import { ApiError, type JsonBytes, parseIntParam, parseTimeParam, queryParams } from './http.js';
import { type Caller, forbidden } from './access.js';
import type { CheckResult } from '../policy/permissions.js';

export const MAX_FRAMES_LIMIT = 1000;
const startedAt = Date.now();

export interface RouteContext {
  readonly gw: ApiSource;
  readonly view: DeviceView;
}

/** Per-policy visibility of frames for one caller: whether it may read a policy. */
export interface FrameAccess {
  readonly check: (policy: string) => CheckResult;
}

/** Frames looked at per request when most are filtered out (the page ends early with a cursor). */
export const MAX_SCANNED_FRAMES = 20_000;

/**
 * GET /api/frames?device&since&until&limit&after&policy&heardBy&local: the merged history
 * (every frame this gateway holds, whichever gateway heard it, once), in receive-time order,
 * each with the gateway that heard it and its policy. With `access`, only frames of policies
 * the caller may read; asking for a policy it may not read, or finding only such frames, is a
 * 403 naming the policy and the missing permission. The body is `{frames: ApiFrame[], more,
 * next}`, written as JSON row by row (frames-json.ts).
 */
export async function queryFrames(ctx: RouteContext, url: URL, access?: FrameAccess): Promise<JsonBytes> {
  const q = queryParams(url, ['device', 'since', 'until', 'limit', 'after', 'policy', 'heardBy', 'local']);
  const policy = q.get('policy');
  if (policy !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(policy))
    throw new ApiError(400, 'bad-query', 'policy must be a policy name');
  if (policy !== undefined && access) {
    const c = access.check(policy);
    if (!c.allowed) throw forbidden(c);
  }
  const cursor = q.get('after');
  const after = cursor === undefined ? undefined : parseCursor(cursor);
  if (cursor !== undefined && !after)
    throw new ApiError(400, 'bad-query', 'after must be the "next" cursor of a previous page');
  const device = q.get('device');
  if (device !== undefined && !ID_PATTERN.test(device))
    throw new ApiError(400, 'bad-query', `device must match ${ID_PATTERN.source}`);
  const local = q.get('local');
  if (local !== undefined && local !== 'true' && local !== 'false')
    throw new ApiError(400, 'bad-query', 'local must be true or false');
  const by = q.get('heardBy');
  const heardBy =
    local === 'true' ? ctx.gw.blockLog!.author : by === undefined ? undefined : ctx.gw.authors.resolve(by);
  if (by !== undefined && heardBy === undefined)
    throw new ApiError(400, 'bad-query', 'heardBy must be a gateway id of the config, a did:key or a hex key');
  const since = parseTimeParam('since', q.get('since'));
  const until = parseTimeParam('until', q.get('until'));
  if (since !== undefined && until !== undefined && until < since)
    throw new ApiError(400, 'bad-query', 'until must not be before since');
  const limit = parseIntParam('limit', q.get('limit'), 1, MAX_FRAMES_LIMIT, 100);
  let last: FrameRow | undefined;
  let denied: Extract<CheckResult, { allowed: false }> | undefined;
  let scanned = 0;
  const query = { device, since, until, after, heardBy, policy };
  // The page's blocks read ahead side by side (a cold store: one disk read per page otherwise).
  await ctx.gw.frames.prefetch(query, limit + 1);
  const frames = new FramesJson(limit);
  const rows = ctx.gw.frames.query(query);
  for (const f of rows) {
    // One row past the page tells whether there is more.
    if (frames.length === limit || scanned === MAX_SCANNED_FRAMES) return frames.end(true, formatCursor(last!));
    scanned++;
    last = f;
    const c = access?.check(f.policy) ?? { allowed: true };
    if (!c.allowed) {
      denied ??= c;
      continue;
    }
    frames.add(f, ctx.gw.authors.name(f.heardBy));
  }
  // A principal that may read none of what it asked for sees nothing, and learns why.
  if (frames.length === 0 && denied) throw forbidden(denied);
  return frames.end(false, null);
}

/** GET /api/status */
export function status(ctx: RouteContext, url: URL): unknown {
  queryParams(url, []);
  return {
    ...ctx.gw.status(),
    uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
    mqttPort: ctx.gw.broker?.port ?? null,
    did: ctx.gw.identity.did,
  };
}

/** GET /api/whoami: the caller as the gateway sees it, and the policies it may read. */
export function whoami(gw: ApiSource, url: URL, caller: Caller): unknown {
  queryParams(url, []);
  if (caller.kind === 'operator') return { caller: 'operator', principal: null, readable: null };
  const perms = gw.policies.permissions;
  const p = perms.principal(caller.did);
  // Only the policies it may read: the names of the others are not its business.
  const readable = [...perms.set.policies.keys()].filter((name) => perms.check(caller.did, 'read', name).allowed);
  return { caller: 'principal', principal: { did: caller.did, id: p?.id ?? null, kind: p?.kind ?? null }, readable };
}
