/**
 * GET /api/firmware: the releases and every rollout with its state, stages and per-device
 * progress, folded from the log (gateway/firmware/view.ts: the same as `gateway firmware
 * list|status --json`), so every gateway holding the blocks answers the same.
 */
import { firmwareView } from '../firmware/view.js';
import { queryParams } from './http.js';
import type { RouteContext } from './routes.js';

export function listFirmware(ctx: RouteContext, url: URL): unknown {
  queryParams(url, []);
  const store = ctx.gw.firmware?.store;
  return store ? firmwareView(store) : { releases: [], rollouts: [] };
}
