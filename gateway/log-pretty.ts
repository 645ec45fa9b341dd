/**
 * Human-readable log lines for a terminal: pino's JSON record as one line per event,
 * `09:55:02.072 INFO  message  key=value …`, with the same fields as the JSON form and the
 * level in colour (no colour when NO_COLOR is set or the stream is not a terminal).
 */

const LEVELS: Record<number, { name: string; colour: string }> = {
  10: { name: 'TRACE', colour: '90' },
  20: { name: 'DEBUG', colour: '36' },
  30: { name: 'INFO', colour: '32' },
  40: { name: 'WARN', colour: '33' },
  50: { name: 'ERROR', colour: '31' },
  60: { name: 'FATAL', colour: '35;1' },
};

/** Fields every line has, shown in its head rather than as key=value. */
const HEAD = new Set(['level', 'time', 'msg', 'svc']);

function fieldValue(v: unknown): string {
  if (typeof v === 'string') return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  if (v !== null && typeof v === 'object' && 'message' in v && 'type' in v)
    return JSON.stringify(`${(v as { type: string }).type}: ${(v as { message: string }).message}`);
  return JSON.stringify(v) ?? String(v);
}

/** One JSON log record (a line pino wrote) as one readable line, without the newline. */
export function prettyLine(json: string, colour: boolean): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json.trimEnd(); // not a record: as it came
  }
  const paint = (code: string, s: string): string => (colour ? `\x1b[${code}m${s}\x1b[0m` : s);
  const level = LEVELS[rec.level as number] ?? { name: String(rec.level), colour: '0' };
  const time = typeof rec.time === 'string' ? rec.time.slice(11, 23) : String(rec.time ?? '');
  const fields = Object.entries(rec)
    .filter(([k]) => !HEAD.has(k))
    .map(([k, v]) => `${paint('2', `${k}=`)}${fieldValue(v)}`);
  return [paint('2', time), paint(level.colour, level.name.padEnd(5)), String(rec.msg ?? ''), ...fields].join(' ');
}

/** A pino destination that writes each record as a pretty line to `out`. */
export function prettyDestination(
  out: { write(s: string): unknown; isTTY?: boolean } = process.stdout,
  colour = out.isTTY === true && process.env.NO_COLOR === undefined,
): { write(chunk: string): void } {
  return {
    write(chunk: string): void {
      for (const line of chunk.split('\n')) if (line !== '') out.write(`${prettyLine(line, colour)}\n`);
    },
  };
}
