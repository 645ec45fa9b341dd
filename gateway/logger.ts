/**
 * Structured logs: one JSON line per event (pino), with device and reason fields; on a
 * terminal (format `auto`) or with format `pretty`, the same fields as one readable line.
 */
import { pino, type Logger } from 'pino';
import { prettyDestination } from './log-pretty.js';

export type { Logger };
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const LOG_FORMATS = ['auto', 'json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** `auto`: pretty when stdout is a terminal, JSON lines otherwise (systemd, files, pipes). */
const resolveLogFormat = (format: LogFormat, tty = process.stdout.isTTY === true): 'json' | 'pretty' =>
  format === 'auto' ? (tty ? 'pretty' : 'json') : format;

export function createLogger(
  level: LogLevel = 'info',
  destination?: NodeJS.WritableStream,
  format: LogFormat = 'json',
): Logger {
  const json = destination ?? pino.destination({ sync: true });
  return pino(
    { level, base: { svc: 'outpost-gateway' }, timestamp: pino.stdTimeFunctions.isoTime },
    resolveLogFormat(format) === 'pretty' ? prettyDestination(destination ?? process.stdout) : json,
  );
}

/**
 * Limits how often one kind of event is logged, so a flood of garbage cannot
 * fill the disk with log lines; suppressed events are summarised later.
 */
export class LogThrottle {
  private readonly windows = new Map<string, { start: number; count: number; suppressed: number }>();

  constructor(
    private readonly log: Logger,
    private readonly perSecond = 20,
  ) {}

  warn(kind: string, fields: Record<string, unknown>, msg: string, now = Date.now()): void {
    this.emit('warn', kind, fields, msg, now);
  }

  info(kind: string, fields: Record<string, unknown>, msg: string, now = Date.now()): void {
    this.emit('info', kind, fields, msg, now);
  }

  error(kind: string, fields: Record<string, unknown>, msg: string, now = Date.now()): void {
    this.emit('error', kind, fields, msg, now);
  }

  private emit(
    level: 'warn' | 'info' | 'error',
    kind: string,
    fields: Record<string, unknown>,
    msg: string,
    now: number,
  ): void {
    let w = this.windows.get(kind);
    if (!w || now - w.start >= 1000) {
      if (w && w.suppressed > 0)
        this.log[level]({ kind, suppressed: w.suppressed }, `${w.suppressed} more "${kind}" events not logged`);
      w = { start: now, count: 0, suppressed: 0 };
      this.windows.set(kind, w);
    }
    if (w.count++ < this.perSecond) this.log[level]({ kind, ...fields }, msg);
    else w.suppressed++;
  }
}
