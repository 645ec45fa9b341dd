/**
 * GET /api/decisions: the latest decisions the rules took, newest first, each with its reason,
 * action, command fence and outcome, read back from the log's signed actuation blocks (as
 * `gateway rules log` does), so what the dashboard shows is what the audit holds.
 */
import { readDecisions } from '../../rules/actuation/index.js';
import { actuationBlocks } from '../actuation/journal.js';
import type { BlockLog } from '../log/block-log.js';
import { parseIntParam, queryParams } from './http.js';

const MAX_DECISIONS_LIMIT = 200;

export function listDecisions(log: BlockLog | undefined, url: URL): unknown {
  const limit = parseIntParam('limit', queryParams(url, ['limit']).get('limit'), 1, MAX_DECISIONS_LIMIT, 20);
  if (!log) return { decisions: [] };
  const self = log.author;
  const { decisions } = readDecisions(actuationBlocks(log));
  return {
    decisions: decisions
      .slice(-limit)
      .reverse()
      .map((d) => ({
        ...d,
        at: new Date(d.at).toISOString(),
        gateway: d.author === self ? 'self' : d.author,
        ...(d.outcome && { outcome: { ...d.outcome, at: new Date(d.outcome.at).toISOString() } }),
      })),
  };
}
