/** `gateway log query`: stored frames as JSON lines or CSV, one row per SenML record. */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { decodeBody, decodeSign1, RELATIVE_TIME_LIMIT, resolvePack, toHex } from '../../protocols/index.js';
import { Store, type StoredFrame } from '../store/store.js';
import { CliError, commonOptions, parseTime, resolveConfig, UsageError } from './args.js';
import { readPrincipalKey, RemoteApiError, type RemoteQuery, remoteFrames } from '../api/client.js';
import { type ExportView, exportView } from './export-view.js';
import { toJson } from './json.js';

export const logQueryHelp = `gateway log query [--device ID] [--since T] [--until T] [--limit N] [--format jsonl|csv] [--raw]
  Prints stored frames in receive order. T is 15m, 2h, 7d, an ISO date or epoch ms.
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
  rx: number;
  device: string;
  boot: number;
  seq: number;
  rxTime: string;
  transport: string;
  records: { name: string; time: number; unit?: string; value?: unknown }[];
  frame?: string;
}

function toRow(f: StoredFrame, raw: boolean): Row {
  const row: Row = {
    rx: f.rx,
    device: f.device,
    boot: f.boot,
    seq: f.seq,
    rxTime: new Date(f.rxTime).toISOString(),
    transport: f.transport,
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
  if (values.remote !== undefined || values.key !== undefined || values.policy !== undefined) {
    if (values.remote === undefined || values.key === undefined)
      throw new UsageError('--remote URL and --key FILE go together (--policy needs them too)');
    if (values.raw || values.as !== undefined)
      throw new UsageError('--raw and --as are for the local store only (remotely, the key says who asks)');
    return remoteQuery(values.remote, values.key, values.format, {
      ...(values.device !== undefined && { device: values.device }),
      ...(values.since !== undefined && { since: parseTime(values.since, '--since') }),
      ...(values.until !== undefined && { until: parseTime(values.until, '--until') }),
      ...(values.policy !== undefined && { policy: values.policy }),
      ...(limit !== undefined && { limit }),
    });
  }
  const cfg = resolveConfig(values);
  const store = Store.open(resolve(cfg.gateway.dataDir));
  let view: ExportView | undefined;
  try {
    if (values.as !== undefined) view = exportView(cfg, store, values.as);
    const rows = store.queryFrames({
      ...(values.device !== undefined && { device: values.device }),
      ...(values.since !== undefined && { since: parseTime(values.since, '--since') }),
      ...(values.until !== undefined && { until: parseTime(values.until, '--until') }),
      ...(limit !== undefined && { limit }),
    });
    if (values.format === 'csv')
      console.log(`rx,device,boot,seq,rx_time,transport,${view ? 'policy,' : ''}name,time,unit,value`);
    let shown = 0;
    for (const f of rows) {
      const policy = view?.policyOf(f);
      if (view && !view.mayRead(policy!)) continue;
      shown++;
      const row = toRow(f, values.raw === true);
      if (values.format === 'jsonl') {
        console.log(toJson(view ? { ...row, policy } : row));
        continue;
      }
      for (const r of row.records) {
        console.log(
          [
            row.rx,
            row.device,
            row.boot,
            row.seq,
            row.rxTime,
            row.transport,
            ...(view ? [policy] : []),
            r.name,
            r.time,
            r.unit,
            r.value,
          ]
            .map(csvCell)
            .join(','),
        );
      }
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
    await store.close();
  }
  return 0;
}

/** `--remote`: the API's frames as this principal sees them, in the same row formats (plus the policy). */
async function remoteQuery(base: string, keyFile: string, format: 'jsonl' | 'csv', q: RemoteQuery): Promise<number> {
  let seed: Uint8Array;
  try {
    seed = readPrincipalKey(keyFile);
  } catch (e) {
    throw new CliError(`--key: ${(e as Error).message}`);
  }
  if (format === 'csv') console.log('rx,device,boot,seq,rx_time,transport,policy,name,time,unit,value');
  try {
    for await (const f of remoteFrames(base, seed, q)) {
      if (format === 'jsonl') {
        console.log(
          toJson({
            rx: f.rx,
            device: f.device,
            boot: f.boot,
            seq: f.seq,
            rxTime: f.rxTime,
            transport: f.transport,
            policy: f.policy ?? null,
            records: f.records,
          }),
        );
        continue;
      }
      for (const r of f.records)
        console.log(
          [f.rx, f.device, f.boot, f.seq, f.rxTime, f.transport, f.policy, r.name, r.time, r.unit, r.value]
            .map(csvCell)
            .join(','),
        );
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
