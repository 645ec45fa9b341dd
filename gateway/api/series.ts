/**
 * GET /api/series?device&name&from&to&step: one series' local rollups (gateway/export/rollups.ts)
 * as points of count, min, mean and max every `step` (1m, 5m, 1h, 1d, … or seconds; a whole
 * number of minutes) over [from, to) (epoch ms or ISO 8601; default the last 24 hours).
 * Whole-hour steps read the hour rollups while they are retained, other steps the minute ones.
 */
import { ID_PATTERN } from '../../protocols/index.js';
import type { RollupStore } from '../export/rollups.js';
import { ApiError, parseTimeParam, queryParams } from './http.js';

const MAX_SERIES_POINTS = 10_000;
const UNIT_S: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };

function parseStep(v: string | undefined): number {
  if (v === undefined) return 60_000;
  const m = /^(\d{1,7})([smhdw])?$/.exec(v);
  const ms = m ? Number(m[1]) * UNIT_S[m[2] ?? 's']! * 1000 : NaN;
  if (!(ms >= 60_000) || ms % 60_000 !== 0)
    throw new ApiError(
      400,
      'bad-query',
      `step must be a whole number of minutes (1m, 5m, 1h, 1d or seconds), not "${v.slice(0, 20)}"`,
    );
  return ms;
}

export function querySeries(rollups: RollupStore | undefined, url: URL, now = Date.now()): unknown {
  const q = queryParams(url, ['device', 'name', 'from', 'to', 'step']);
  if (!rollups) throw new ApiError(404, 'no-rollups', 'rollups are off (export.rollups.enabled: false)');
  const device = q.get('device');
  const name = q.get('name');
  if (device === undefined || !ID_PATTERN.test(device))
    throw new ApiError(400, 'bad-query', `device is required and must match ${ID_PATTERN.source}`);
  if (name === undefined || name.length === 0 || name.length > 128)
    throw new ApiError(400, 'bad-query', 'name (a SenML name) is required');
  const to = parseTimeParam('to', q.get('to')) ?? now;
  const from = parseTimeParam('from', q.get('from')) ?? to - 86_400_000;
  if (to < from) throw new ApiError(400, 'bad-query', 'to must not be before from');
  const step = parseStep(q.get('step'));
  if ((to - from) / step > MAX_SERIES_POINTS)
    throw new ApiError(400, 'bad-query', `at most ${MAX_SERIES_POINTS} points: widen step or narrow from..to`);
  const points = rollups.query(device, name, from, to, step).map((p) => ({
    t: new Date(p.t).toISOString(),
    count: p.count,
    min: p.min,
    mean: p.mean,
    max: p.max,
  }));
  return {
    device,
    name,
    from: new Date(from).toISOString(),
    to: new Date(to).toISOString(),
    stepSeconds: step / 1000,
    points,
  };
}
