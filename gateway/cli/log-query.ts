/** `gateway log query`: stored frames as JSON lines or CSV, one row per SenML record. */
import { parseArgs } from 'node:util';
import { decodeBody, decodeSign1, RELATIVE_TIME_LIMIT, resolvePack, toHex } from '../../protocols/index.js';
import type { FrameRow } from '../log/frames-index.js';
import { openFrames } from './log-reader.js';
import { CliError, commonOptions, parseTime, UsageError } from './args.js';
import { readPrincipalKey, RemoteApiError, type RemoteQuery, remoteFrames } from '../api/client.js';
import { type ExportView, exportView } from './export-view.js';
import { toJson } from './json.js';

export const logQueryHelp = `gateway log query [--device ID] [--since T] [--until T] [--heard-by GW] [--policy P] [--local]
                  [--limit N] [--format jsonl|csv] [--raw] [--as PRINCIPAL]
  Prints the site's frames in receive order: every frame this gateway holds, whichever gateway
  heard it (synced from siblings), once; each row says which gateway heard it (heardBy: its id
  from sync.peers, else its did:key), over which transport, under which policy.
  T is 15m, 2h, 7d, an ISO date or epoch ms. --heard-by GW (an id of the config, a did:key or a
  hex key) keeps one gateway's frames; --local this gateway's own (what it heard itself).
  jsonl: one frame per line with its decoded records; csv: one row per SenML record.
  --raw adds the verbatim COSE_Sign1 bytes (hex), so anyone can re-verify the device signature.
  --as PRINCIPAL (a did:key or a name in the policy file): an export for that principal, only
  the frames of policies it may read (file and grants in the log), with a policy column;
  exit 1 naming the policy and the missing permission when it may read none of them.
gateway log query --remote URL --key FILE [--policy P] [--device ID] [--since T] [--until T] [--limit N] [--format jsonl|csv]
  The same from a gateway's API, as the principal whose key (an Ed25519 seed, 64 hex digits,
  from \`gateway policy keygen\`) signs each request (RFC 9421): only frames of policies that
  principal may read; a refusal (401/403) is printed with the policy and missing permission, exit 1.`;

interface Row {
  device: string;
  boot: number;
  seq: number;
  rxTime: string;
  heardBy: string;
  transport: string;
  policy: string;
  records: { name: string; time: number; unit?: string; value?: unknown }[];
  frame?: string;
}

function toRow(f: FrameRow, heardBy: string, raw: boolean): Row {
  const row: Row = {
    device: f.device,
    boot: f.boot,
    seq: f.seq,
    rxTime: new Date(f.rxTime).toISOString(),
    heardBy,
    transport: f.transport,
    policy: f.policy,
    records: [],
  };
  const cose = decodeSign1(f.frame);
  const body = cose.ok ? decodeBody(cose.value.payload) : undefined;
  if (body?.ok && body.value.type === 'reading') {
    const pack = resolvePack(body.value.records);
    if (pack.ok) {
      row.records = pack.value.map((r) => ({
        name: r.name,
        // RFC 8428 §4.5.3: small times are relative to when the frame was received.
        time: r.time < RELATIVE_TIME_LIMIT ? f.rxTime / 1000 + r.time : r.time,
        ...(r.unit !== undefined && { unit: r.unit }),
        value: r.value ?? r.stringValue ?? r.boolValue ?? (r.dataValue && toHex(r.dataValue)) ?? r.sum,
      }));
    }
  }
  if (raw) row.frame = toHex(f.frame);
  return row;
}

const csvCell = (v: unknown): string => {
  const s = v === undefined ? '' : String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

export async function logQuery(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...commonOptions,
      device: { type: 'string' },
      since: { type: 'string' },
      until: { type: 'string' },
      limit: { type: 'string' },
      format: { type: 'string', default: 'jsonl' },
      raw: { type: 'boolean' },
      remote: { type: 'string' },
      as: { type: 'string' },
      key: { type: 'string' },
      policy: { type: 'string' },
      'heard-by': { type: 'string' },
      local: { type: 'boolean' },
    },
  });
  if (values.help) {
    console.log(logQueryHelp);
    return 0;
  }
  if (values.format !== 'jsonl' && values.format !== 'csv')
    throw new UsageError(`--format must be jsonl or csv, not "${values.format}"`);
  const limit = values.limit === undefined ? undefined : Number(values.limit);
  if (limit !== undefined && (!Number.isInteger(limit) || limit <= 0))
    throw new UsageError('--limit must be a positive integer');
  if (values.local && values['heard-by'] !== undefined) throw new UsageError('give --local or --heard-by, not both');
  if (values.remote !== undefined || values.key !== undefined) {
    if (values.remote === undefined || values.key === undefined)
      throw new UsageError('--remote URL and --key FILE go together');
    if (values.raw || values.as !== undefined)
      throw new UsageError('--raw and --as are for the local store only (remotely, the key says who asks)');
    return remoteQuery(values.remote, values.key, values.format, {
      ...(values.device !== undefined && { device: values.device }),
      ...(values.since !== undefined && { since: parseTime(values.since, '--since') }),
      ...(values.until !== undefined && { until: parseTime(values.until, '--until') }),
      ...(values.policy !== undefined && { policy: values.policy }),
      ...(values['heard-by'] !== undefined && { heardBy: values['heard-by'] }),
      ...(values.local && { local: true }),
      ...(limit !== undefined && { limit }),
    });
  }
  const cli = openFrames(values);
  let view: ExportView | undefined;
  try {
    const by = values['heard-by'];
    const heardBy = values.local ? cli.log.author : by === undefined ? undefined : cli.authors.resolve(by);
    if (by !== undefined && heardBy === undefined)
      throw new UsageError(`--heard-by ${by}: not a gateway id of the config, a did:key or a hex key`);
    if (values.as !== undefined) view = exportView(cli.cfg, cli.log, values.as);
    const rows = cli.frames.query({
      ...(values.device !== undefined && { device: values.device }),
      ...(values.since !== undefined && { since: parseTime(values.since, '--since') }),
      ...(values.until !== undefined && { until: parseTime(values.until, '--until') }),
      ...(heardBy !== undefined && { heardBy }),
      ...(values.policy !== undefined && { policy: values.policy }),
    });
    if (values.format === 'csv') console.log(CSV_HEADER);
    let shown = 0;
    for (const f of rows) {
      if (limit !== undefined && shown >= limit) break;
      if (view && !view.mayRead(f.policy)) continue;
      shown++;
      printRow(toRow(f, cli.authors.name(f.heardBy), values.raw === true), values.format);
    }
    const refused = view?.firstRefusal();
    if (view && shown === 0 && refused) {
      console.error(
        `refused: ${values.as} may not read policy ${refused.policy}: missing ${refused.missing} (${refused.reason})`,
      );
      return 1;
    }
  } finally {
    view?.close();
    await cli.close();
  }
  return 0;
}

const CSV_HEADER = 'device,boot,seq,rx_time,heard_by,transport,policy,name,time,unit,value';

function printRow(row: Row, format: 'jsonl' | 'csv'): void {
  if (format === 'jsonl') return void console.log(toJson(row));
  for (const r of row.records)
    console.log(
      [
        row.device,
        row.boot,
        row.seq,
        row.rxTime,
        row.heardBy,
        row.transport,
        row.policy,
        r.name,
        r.time,
        r.unit,
        r.value,
      ]
        .map(csvCell)
        .join(','),
    );
}

/** `--remote`: the API's frames as this principal sees them, in the same row formats (plus the policy). */
async function remoteQuery(base: string, keyFile: string, format: 'jsonl' | 'csv', q: RemoteQuery): Promise<number> {
  let seed: Uint8Array;
  try {
    seed = readPrincipalKey(keyFile);
  } catch (e) {
    throw new CliError(`--key: ${(e as Error).message}`);
  }
  if (format === 'csv') console.log(CSV_HEADER);
  try {
    for await (const f of remoteFrames(base, seed, q)) {
      const { device, boot, seq, rxTime, heardBy, transport, policy, records } = f;
      printRow({ device, boot, seq, rxTime, heardBy, transport, policy, records }, format);
    }
  } catch (e) {
    if (!(e instanceof RemoteApiError)) throw new CliError(`${base}: ${(e as Error).message}`);
    const d = e.details as { policy?: string; missing?: string; reason?: string };
    console.error(
      `refused (${e.status} ${e.code}${d.reason ? ` ${d.reason}` : ''}): ${e.message}${d.policy ? ` [policy ${d.policy}, missing ${d.missing}]` : ''}`,
    );
    return 1;
  }
  return 0;
}
