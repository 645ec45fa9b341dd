/**
 * `gateway log prune --dry-run`: what retention (config `log.retention`, else the stream's
 * policy `retention`) would prune of this gateway's own streams now, and the marks held.
 * Pruning itself is done by the running gateway (it authors the retention blocks; a second
 * process authoring on the same streams would fork them), so only the preview is offered here.
 */
import { parseArgs } from 'node:util';
import { retentionResolver } from '../log/retention.js';
import { loadPolicySet } from '../policy/runtime.js';
import { commonOptions, resolveConfig, UsageError } from './args.js';
import { toJson } from './json.js';
import { openLog } from './log-audit.js';

export const logPruneHelp = `gateway log prune --dry-run [--json]
  Shows what log retention (log.retention, or a policy's retention) would prune of this
  gateway's own streams now, and every stream's low-water mark. The running gateway prunes.`;

export async function logPrune(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { ...commonOptions, json: { type: 'boolean' }, 'dry-run': { type: 'boolean' } },
  });
  if (values.help) {
    console.log(logPruneHelp);
    return 0;
  }
  if (!values['dry-run'])
    throw new UsageError(`the running gateway prunes (log.retention); preview with --dry-run\n${logPruneHelp}`);
  const cfg = resolveConfig(values);
  const policies = loadPolicySet(cfg).policies;
  const retentionFor = retentionResolver(cfg.log.retention, (s) => policies.get(s)?.retentionMs);
  const { store, log } = openLog(values, [], { retentionFor });
  try {
    const plan = log.retainByAge(Date.now(), true);
    const marks = log.streamHeads().map((h) => ({
      author: h.author,
      stream: h.stream,
      mark: log.mark(h.author, h.stream),
      head: h.seq,
      maxAgeMs: h.author === log.author ? (retentionFor(h.stream) ?? null) : null,
    }));
    if (values.json) console.log(toJson({ plan, marks }));
    else {
      for (const m of marks)
        console.log(
          `  ${m.author.slice(0, 16)}… ${m.stream} mark ${m.mark} head #${m.head}${m.maxAgeMs !== null ? ` keep ${Math.round(m.maxAgeMs / 1000)} s` : m.author === log.author ? ' keep forever' : ''}`,
        );
      if (plan.length === 0) console.log('nothing to prune now');
      for (const p of plan) console.log(`would prune ${p.prunable} block(s) of ${p.stream} below seq ${p.low}`);
    }
    return 0;
  } finally {
    await store.close();
  }
}
