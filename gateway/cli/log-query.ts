/** `gateway log query`: stored frames as JSON lines or CSV, one row per SenML record. */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { decodeBody, decodeSign1, RELATIVE_TIME_LIMIT, resolvePack, toHex } from '../../protocols/index.js';
import { Store, type StoredFrame } from '../store/store.js';
import { commonOptions, parseTime, resolveConfig, UsageError } from './args.js';
import { toJson } from './json.js';

export const logQueryHelp = `gateway log query [--device ID] [--since T] [--until T] [--limit N] [--format jsonl|csv] [--raw]
  Prints stored frames in receive order. T is 15m, 2h, 7d, an ISO date or epoch ms.
  jsonl: one frame per line with its decoded records; csv: one row per SenML record.
  --raw adds the verbatim COSE_Sign1 bytes (hex), so anyone can re-verify the device signature.`;

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
  const row: Row = { rx: f.rx, device: f.device, boot: f.boot, seq: f.seq, rxTime: new Date(f.rxTime).toISOString(), transport: f.transport, records: [] };
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
    },
  });
  if (values.help) {
    console.log(logQueryHelp);
    return 0;
  }
  if (values.format !== 'jsonl' && values.format !== 'csv') throw new UsageError(`--format must be jsonl or csv, not "${values.format}"`);
  const limit = values.limit === undefined ? undefined : Number(values.limit);
  if (limit !== undefined && (!Number.isInteger(limit) || limit <= 0)) throw new UsageError('--limit must be a positive integer');
  const cfg = resolveConfig(values);
  const store = Store.open(resolve(cfg.gateway.dataDir));
  try {
    const rows = store.queryFrames({
      ...(values.device !== undefined && { device: values.device }),
      ...(values.since !== undefined && { since: parseTime(values.since, '--since') }),
      ...(values.until !== undefined && { until: parseTime(values.until, '--until') }),
      ...(limit !== undefined && { limit }),
    });
    if (values.format === 'csv') console.log('rx,device,boot,seq,rx_time,transport,name,time,unit,value');
    for (const f of rows) {
      const row = toRow(f, values.raw === true);
      if (values.format === 'jsonl') {
        console.log(toJson(row));
        continue;
      }
      for (const r of row.records) {
        console.log([row.rx, row.device, row.boot, row.seq, row.rxTime, row.transport, r.name, r.time, r.unit, r.value].map(csvCell).join(','));
      }
    }
  } finally {
    await store.close();
  }
  return 0;
}
