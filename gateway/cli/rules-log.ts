/**
 * `gateway rules log`: the decisions actually taken, read back from the signed actuation
 * blocks in the log (every author's, so a sibling's too once synced): when, which gateway,
 * which rule and version, which frames caused it, the command (fence) and how it ended.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { type AuditedDecision, readDecisions } from '../../rules/actuation/index.js';
import { actuationBlocks } from '../actuation/journal.js';
import { BlockLog } from '../log/block-log.js';
import { Store } from '../store/store.js';
import { siblingKeys } from '../sync/siblings.js';
import { CliError, commonOptions, existingIdentity, parseTime, resolveConfig } from './args.js';
import { settingsText } from './device-settings.js';

export const rulesLogHelp = `gateway rules log [--since T] [--until T] [--rule ID] [--device ID] [--json]
  The decisions actually taken, from the log's signed actuation blocks (this gateway's and
  synced siblings'): time, gateway, rule@version, input frames (device/boot/seq), the action
  (command with its fence), and the outcome (acked, refused, expired, no-route, no-lease,
  superseded, interlocked; attempts; the device's detail). --json prints one JSON array.`;

const actionText = (d: AuditedDecision): string => {
  const a = d.action;
  if (a.kind === 'command')
    return `${a.command.device}/${a.command.actuator} = ${JSON.stringify(a.command.value)}${d.command?.fence !== undefined ? ` (fence ${d.command.fence})` : ''}`;
  if (a.kind === 'publish') return `publish ${a.topic}`;
  if (a.kind === 'settings') return `settings ${a.device} ${settingsText(a.values)}`;
  return `alert "${a.message}"`;
};

export function rulesLog(argv: string[]): number {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...commonOptions,
      since: { type: 'string' },
      until: { type: 'string' },
      rule: { type: 'string' },
      device: { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  if (values.help) {
    console.log(rulesLogHelp);
    return 0;
  }
  const now = Date.now();
  const since = values.since !== undefined ? parseTime(values.since, '--since', now) : 0;
  const until = values.until !== undefined ? parseTime(values.until, '--until', now) : Number.MAX_SAFE_INTEGER;
  const cfg = resolveConfig(values);
  const dataDir = resolve(cfg.gateway.dataDir);
  if (!existsSync(join(dataDir, 'outpost.lmdb')) || !existsSync(join(dataDir, 'identity.key')))
    throw new CliError(`no gateway store in ${dataDir} (start the gateway once)`);
  const store = Store.open(dataDir);
  try {
    const identity = existingIdentity(cfg);
    const log = new BlockLog(store, {
      publicKey: identity.publicKey,
      sign: identity.sign,
      knownAuthors: siblingKeys(cfg.sync),
    });
    const self = log.author;
    const decisions = readDecisions(actuationBlocks(log)).decisions.filter(
      (d) =>
        d.at >= since &&
        d.at < until &&
        (values.rule === undefined || d.rule === values.rule) &&
        (values.device === undefined ||
          d.inputs.some((f) => f.device === values.device) ||
          (d.action.kind === 'command' && d.action.command.device === values.device) ||
          (d.action.kind === 'settings' && d.action.device === values.device)),
    );
    if (values.json) {
      console.log(
        JSON.stringify(
          decisions.map((d) => ({
            ...d,
            at: new Date(d.at).toISOString(),
            gateway: d.author === self ? 'self' : d.author,
          })),
          null,
          2,
        ),
      );
      return 0;
    }
    for (const d of decisions) {
      const who = d.author === self ? 'self' : d.author.slice(0, 12);
      const inputs = d.inputs.map((f) => `${f.device}/${f.boot}/${f.seq}`).join(' ') || '-';
      const outcome = d.outcome
        ? `${d.outcome.state} after ${d.outcome.attempts} send(s)${d.outcome.detail ? `: ${d.outcome.detail}` : ''}`
        : d.command
          ? 'in flight (no outcome logged)'
          : '';
      console.log(
        `${new Date(d.at).toISOString()}  ${who}  ${d.rule}@${d.ruleVersion.slice(0, 12)}  [${inputs}]  ${actionText(d)}  ${outcome}\n    ${d.reason}`,
      );
    }
    if (decisions.length === 0) console.log('no decisions logged');
    return 0;
  } finally {
    void store.close();
  }
}
