/** What every sink does: deliver a batch and say when the far end confirmed it. */
import type { ExportFrame } from '../source.js';

export interface Alert {
  /** Dedup key: the same key is one alert until it is resolved. */
  readonly key: string;
  readonly kind: string;
  readonly state: 'firing' | 'resolved';
  readonly message: string;
  readonly gateway: string;
  /** ms since the epoch. */
  readonly time: number;
  readonly detail?: Record<string, unknown>;
}

export interface DataSink {
  readonly name: string;
  /**
   * Delivers frames; resolves once the far end confirmed all of them (a PostgreSQL commit,
   * every PUBACK), rejects if any was not. A rejected batch is sent again, whole.
   */
  deliver(frames: readonly ExportFrame[]): Promise<void>;
  /**
   * Optional: the exporter hands over the batch it read ahead (the one it will deliver next),
   * while the batch in flight is written, so the sink can encode it meanwhile.
   */
  prepare?(frames: readonly ExportFrame[]): void;
  close(): Promise<void>;
}

export interface Notifier {
  readonly name: string;
  /** Resolves once the receiver accepted it (2xx, PUBACK). */
  notify(alert: Alert): Promise<void>;
  close(): Promise<void>;
}

/** Gateway id of a block author (hex key), for the `heard_by` column and topics; the hex key when unknown. */
export type GatewayName = (author: string) => string;

/** A template's {gateway}, {device}, {policy}, {boot}, {seq} filled in. */
export const fillTopic = (template: string, vars: Record<string, string | number>): string =>
  template.replace(/\{(\w+)\}/g, (m, k: string) => (k in vars ? String(vars[k]) : m));
