/**
 * Alerts to notifiers (webhook, MQTT topic), deduplicated and rate-limited, with a resolved
 * message when the condition clears.
 *
 * State-based: callers say which conditions hold (`raise` / `resolve`, by key); a flush
 * (every second) brings each notifier to that state. So a condition is sent once while it
 * holds (dedup), a resolution follows when it clears, a failed delivery is simply retried
 * at the next flush, and a condition that flaps within `minIntervalMs` reaches a notifier at
 * most once per interval per key (the last state wins). `maxPerMinute` caps each notifier
 * over all keys; what it holds back goes out at a later flush. One-shot alerts (a watchdog
 * or interlock alert, with nothing that clears them) are sent once per `minIntervalMs` per
 * key and have no resolution. With `stateFile` the state survives a restart (alert-state.ts):
 * a condition raised again after it is not sent again, and one resolved after it gets its
 * resolution. A key neither raised nor awaiting its resolution is forgotten once
 * `minIntervalMs` has passed.
 */
import type { Logger } from '../logger.js';
import { type AlertSnapshot, AlertStateFile, type Condition, type Notified } from './alert-state.js';
import type { Alert, Notifier } from './sinks/types.js';

export interface AlertOptions {
  readonly gateway: string;
  readonly minIntervalMs: number;
  readonly maxPerMinute: number;
  readonly now?: () => number;
  readonly flushMs?: number;
  /** Where the state is kept across restarts (`<dataDir>/alerts.json`); absent: memory only. */
  readonly stateFile?: string;
}

export class AlertManager {
  private readonly active = new Map<string, Condition>();
  /** Per notifier, per key: what it was last told. */
  private readonly told = new Map<string, Map<string, Notified>>();
  /** Resolution messages waiting to be sent (the condition is gone from `active`). */
  private readonly cleared = new Map<string, Condition & { message: string }>();
  private readonly sentAt = new Map<string, number[]>();
  private readonly inFlight = new Set<string>();
  private readonly timer: NodeJS.Timeout;
  private readonly now: () => number;
  readonly stats = { sent: 0, failed: 0, held: 0 };
  private readonly state?: AlertStateFile;

  constructor(
    private readonly notifiers: readonly Notifier[],
    private readonly opts: AlertOptions,
    private readonly log: Logger,
  ) {
    this.now = opts.now ?? Date.now;
    for (const n of notifiers) this.told.set(n.name, new Map());
    if (opts.stateFile) {
      this.state = new AlertStateFile(opts.stateFile);
      try {
        const saved = this.state.load();
        if (saved) this.restore(saved);
      } catch (e) {
        log.warn({ file: opts.stateFile, err: String(e) }, `alert state not restored (${String(e)}): starting afresh`);
      }
    }
    this.timer = setInterval(() => this.flush(), opts.flushMs ?? 1000);
    this.timer.unref();
  }

  /** The condition `key` holds (again). Repeats while it holds change nothing. */
  raise(key: string, kind: string, message: string, detail?: Record<string, unknown>, once = false): void {
    if (this.active.has(key) && !once) return;
    this.cleared.delete(key);
    this.active.set(key, { kind, message, since: this.now(), ...(detail && { detail }), ...(once && { once }) });
    this.log.warn({ alert: key, kind, ...detail }, `alert: ${message}`);
    this.persist();
    this.flush();
  }

  /** The condition `key` no longer holds; `message` says so (default: "resolved: <the alert's message>"). */
  resolve(key: string, message?: string): void {
    const c = this.active.get(key);
    if (!c || c.once) return;
    this.active.delete(key);
    this.cleared.set(key, { ...c, message: message ?? `resolved: ${c.message}` });
    this.log.info({ alert: key, kind: c.kind }, message ?? `alert resolved: ${c.message}`);
    this.persist();
    this.flush();
  }

  firing(): { key: string; kind: string; message: string; since: string }[] {
    return [...this.active]
      .filter(([, c]) => !c.once)
      .map(([key, c]) => ({ key, kind: c.kind, message: c.message, since: new Date(c.since).toISOString() }));
  }

  /** Keys held in memory: raised, awaiting their resolution's delivery, or within their hold-back interval. */
  get tracked(): number {
    const keys = new Set([...this.active.keys(), ...this.cleared.keys()]);
    for (const told of this.told.values()) for (const k of told.keys()) keys.add(k);
    return keys.size;
  }

  private allowed(notifier: string, now: number): boolean {
    const recent = (this.sentAt.get(notifier) ?? []).filter((t) => t > now - 60_000);
    this.sentAt.set(notifier, recent);
    return recent.length < this.opts.maxPerMinute;
  }

  /** Brings every notifier to the current state, as far as the limits allow. */
  flush(): void {
    const now = this.now();
    this.forget(now);
    for (const n of this.notifiers) {
      const told = this.told.get(n.name)!;
      const keys = new Set([...this.active.keys(), ...this.cleared.keys()]);
      for (const key of keys) {
        const id = `${n.name}\u0000${key}`;
        if (this.inFlight.has(id)) continue;
        const c = this.active.get(key);
        const want: Notified['state'] = c ? 'firing' : 'resolved';
        const cond = c ?? this.cleared.get(key)!;
        const last = told.get(key);
        if (last && last.state === want && last.since === cond.since) continue;
        if (!last && want === 'resolved') continue; // never told it fired: nothing to resolve
        if (last && now - last.at < this.opts.minIntervalMs) {
          this.stats.held++;
          continue;
        }
        if (!this.allowed(n.name, now)) {
          this.stats.held++;
          continue;
        }
        this.sentAt.get(n.name)!.push(now);
        const alert: Alert = {
          key,
          kind: cond.kind,
          state: want,
          message: cond.message,
          gateway: this.opts.gateway,
          time: now,
          ...(cond.detail && { detail: cond.detail }),
        };
        this.inFlight.add(id);
        n.notify(alert).then(
          () => {
            this.inFlight.delete(id);
            this.stats.sent++;
            told.set(key, { state: want, at: now, since: cond.since });
            this.settle(key);
            this.persist();
          },
          (e: unknown) => {
            this.inFlight.delete(id);
            this.stats.failed++;
            this.log.warn(
              { notifier: n.name, alert: key, err: String(e) },
              `alert to ${n.name} not delivered; retrying`,
            );
          },
        );
      }
    }
    this.persist();
  }

  /** What notifiers were told of (only notifiers still configured) and what is raised or awaiting resolution. */
  private restore(s: AlertSnapshot): void {
    for (const [k, c] of s.active) this.active.set(k, c);
    for (const [k, c] of s.cleared) this.cleared.set(k, c);
    for (const [name, keys] of s.told) {
      const told = this.told.get(name);
      if (told) for (const [k, t] of keys) told.set(k, t);
    }
  }

  /** Saves the state when it changed (no-op without a state file); a failed write is logged and retried on the next change. */
  private persist(): void {
    if (!this.state) return;
    try {
      this.state.save({
        active: [...this.active],
        cleared: [...this.cleared],
        told: [...this.told].map(([n, m]) => [n, [...m]]),
      });
    } catch (e) {
      this.log.warn({ err: String(e) }, `alert state not saved: ${String(e)}`);
    }
  }

  /**
   * Drops a resolution once no notifier still needs it (each was told it, or never told the
   * alert fired), and what notifiers were told of keys no longer raised once `minIntervalMs`
   * has passed (nothing left to hold back): one-shot keys carry their message, so without
   * this the maps would grow with every distinct alert.
   */
  private forget(now: number): void {
    for (const [key, c] of this.cleared)
      if (
        this.notifiers.every((n) => {
          const t = this.told.get(n.name)!.get(key);
          const idle = !this.inFlight.has(`${n.name}\u0000${key}`);
          return idle && (t === undefined || (t.state === 'resolved' && t.since === c.since));
        })
      )
        this.cleared.delete(key);
    for (const told of this.told.values())
      for (const [key, t] of told)
        if (!this.active.has(key) && !this.cleared.has(key) && now - t.at >= this.opts.minIntervalMs) told.delete(key);
  }

  /** Forgets a resolved or one-shot key once every notifier has been told. */
  private settle(key: string): void {
    const c = this.active.get(key);
    const done = (state: Notified['state']): boolean =>
      this.notifiers.every((n) => this.told.get(n.name)!.get(key)?.state === state);
    if (c?.once && done('firing')) this.active.delete(key);
    else if (!c && this.cleared.has(key) && done('resolved')) this.cleared.delete(key);
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    this.persist();
  }
}
