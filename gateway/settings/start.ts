/**
 * Desired settings in the live gateway: merged from the log's `settings` blocks (held at
 * start, authored here from `gateway devices set`, applied from siblings by sync), compared
 * with what each device reports in its latest reading (whichever gateway heard it), and
 * delivered to devices this gateway hears until both agree (delivery.ts).
 */
import { resolve } from 'node:path';
import type { Observable, Subscription } from 'rxjs';
import type { SignedBlock } from '../../protocols/index.js';
import type { SettingEntry } from '../../protocols/settings.js';
import type { GatewayActuation } from '../actuation/start.js';
import type { IngestedFrame } from '../ingest/outcome.js';
import { authorNames } from '../log/author-names.js';
import type { BlockLog } from '../log/block-log.js';
import type { Logger } from '../logger.js';
import type { PartContext } from '../start-parts.js';
import type { SpaceCheck } from '../store/free-space.js';
import type { DesiredSettings } from './desired.js';
import { SettingsDelivery, type SettingsTransport } from './delivery.js';
import { SettingsInbox } from './inbox.js';
import {
  desiredFromLog,
  latestReported,
  type Reported,
  reportedIn,
  settingsOf,
  settingsView,
  type SettingsView,
} from './log.js';

export interface GatewaySettingsDeps {
  readonly gatewayId: string;
  readonly sign: (m: Uint8Array) => Uint8Array;
  readonly dataDir: string;
  readonly blockLog: BlockLog;
  readonly frames$: Observable<IngestedFrame>;
  /** The device's own transport at this gateway (gateway/actuation/routes.ts). */
  readonly transport: SettingsTransport;
  /** When this gateway last stored a frame of the device (undefined: never). */
  readonly lastHeard: (device: string) => number | undefined;
  readonly appendInCommit: (author: () => void) => void;
  readonly authorName: (hex: string) => string;
  readonly logger: Logger;
  readonly space?: SpaceCheck;
}

export interface SettingsTimings {
  /** First resend after this, doubling up to retryMaxMs (defaults 1 s, 30 s). */
  readonly retryMinMs?: number;
  readonly retryMaxMs?: number;
  /** Deliver only to devices heard within this long (default 60 s, as commands). */
  readonly heardWithinMs?: number;
  /** A device heard again after this long a silence gets its pending settings at once (default 10 s). */
  readonly silenceMs?: number;
}

export class GatewaySettings {
  readonly desired: DesiredSettings;
  readonly delivery: SettingsDelivery;
  readonly inbox: SettingsInbox;
  private readonly reported = new Map<string, Reported>();
  /** Device → when this gateway last heard it (a device back after a silence is sent to at once). */
  private readonly heardAt = new Map<string, number>();
  private readonly subs: Subscription[] = [];
  private readonly unsubscribe: (() => void)[] = [];
  private readonly timer: NodeJS.Timeout;
  private readonly heardWithinMs: number;
  private readonly silenceMs: number;
  private readonly log: Logger;

  constructor(
    private readonly deps: GatewaySettingsDeps,
    t: SettingsTimings = {},
  ) {
    this.log = deps.logger.child({ component: 'settings' });
    this.heardWithinMs = t.heardWithinMs ?? 60_000;
    this.silenceMs = t.silenceMs ?? 10_000;
    this.desired = desiredFromLog(deps.blockLog);
    for (const d of this.desired.devices()) {
      const r = latestReported(deps.blockLog, d);
      if (r) this.reported.set(d, r);
    }
    const devices = this.desired.devices().length;
    if (devices > 0)
      this.log.info({ devices, pending: this.pendingDevices().length }, 'desired settings loaded from the log');
    this.delivery = new SettingsDelivery({
      gatewayId: deps.gatewayId,
      sign: deps.sign,
      transport: deps.transport,
      retryMinMs: t.retryMinMs ?? 1000,
      retryMaxMs: Math.max(t.retryMinMs ?? 1000, t.retryMaxMs ?? 30_000),
      ttlMs: 5 * 60_000,
    });
    this.inbox = new SettingsInbox(deps.dataDir, deps.blockLog, deps.appendInCommit, this.log, deps.space);
    // Settings blocks as they become durable: ours (from the inbox) and siblings' (sync).
    this.unsubscribe.push(
      deps.blockLog.onDurableBlock((sb: SignedBlock) => {
        const s = settingsOf(sb);
        if (!s) return;
        const changed = this.desired.add(s.record, s.version, s.hash);
        if (changed.length === 0) return;
        this.delivery.reset(s.record.device);
        void this.check(s.record.device);
      }),
    );
    // Readings (heard here or by a sibling) say what the device holds now.
    this.unsubscribe.push(
      deps.blockLog.onFrames((rows) => {
        for (const row of rows) {
          if (this.desired.get(row.device) === undefined) continue;
          const r = reportedIn({ ...row, heardBy: deps.authorName(row.heardBy) });
          const held = this.reported.get(row.device);
          if (r && (!held || r.at >= held.at)) this.reported.set(row.device, r);
        }
      }),
    );
    // Frames heard here: acks to our messages, and a device back after a silence gets them at once.
    this.subs.push(
      deps.frames$.subscribe((f) => {
        if (this.desired.get(f.device) === undefined) return;
        if (f.body.type === 'command-ack') this.delivery.onAck(f.device, f.body);
        const prev = this.heardAt.get(f.device);
        this.heardAt.set(f.device, f.rxTime);
        if (prev === undefined || f.rxTime - prev > this.silenceMs) this.delivery.reset(f.device);
        setImmediate(() => void this.check(f.device));
      }),
    );
    this.timer = setInterval(() => {
      for (const d of this.pendingDevices()) void this.check(d);
    }, 1000);
    this.timer.unref();
  }

  start(): this {
    this.inbox.start();
    return this;
  }

  /** The desired entries the device does not report yet. */
  private pending(device: string): SettingEntry[] {
    const want = this.desired.get(device);
    if (!want) return [];
    const got = this.reported.get(device)?.values ?? {};
    const out: SettingEntry[] = [];
    for (const [key, s] of want)
      if (!Object.hasOwn(got, key) || got[key] !== s.value) out.push({ key, value: s.value, version: s.version });
    return out;
  }

  pendingDevices(): string[] {
    return this.desired.devices().filter((d) => this.pending(d).length > 0);
  }

  /** Sends what the device lacks, if this gateway heard it recently and the backoff allows. */
  private async check(device: string): Promise<void> {
    const entries = this.pending(device);
    if (entries.length === 0) return this.delivery.settled(device);
    const heard = this.deps.lastHeard(device);
    if (heard === undefined || Date.now() - heard > this.heardWithinMs) return;
    if (await this.delivery.offer(device, entries))
      this.log.info({ device, keys: entries.map((e) => e.key) }, `settings sent to ${device}`);
  }

  /** Desired vs reported for one device (undefined: no desired settings), with this gateway's delivery state. */
  view(device: string): (SettingsView & { delivery: Record<string, unknown> | null }) | undefined {
    if (this.desired.get(device) === undefined) return undefined;
    const v = settingsView(this.desired, this.reported.get(device), device, this.deps.authorName);
    const d = this.delivery.of(device);
    return {
      ...v,
      delivery: d
        ? {
            attempts: d.attempts,
            lastSent: d.lastSent !== undefined ? new Date(d.lastSent).toISOString() : null,
            lastAck: d.lastAck ? { ...d.lastAck, at: new Date(d.lastAck.at).toISOString() } : null,
          }
        : null,
    };
  }

  status(): Record<string, unknown> {
    return { devices: this.desired.devices().length, pending: this.pendingDevices().length, ...this.delivery.stats };
  }

  stop(): void {
    clearInterval(this.timer);
    this.inbox.stop();
    for (const s of this.subs) s.unsubscribe();
    for (const u of this.unsubscribe) u();
  }
}

/** The settings part of a starting gateway (after actuation, whose routes and hearing it uses). */
export function startSettings(
  ctx: PartContext,
  actuation: GatewayActuation,
  space: SpaceCheck,
  t: SettingsTimings = {},
): GatewaySettings {
  const { config, identity, blockLog, ingest } = ctx;
  const names = authorNames({ id: config.gateway.id, publicKey: identity.publicKey }, config.sync.peers);
  const settings = new GatewaySettings(
    {
      gatewayId: config.gateway.id,
      sign: identity.sign,
      dataDir: resolve(config.gateway.dataDir),
      blockLog,
      frames$: ingest.frames$,
      transport: actuation.routes,
      lastHeard: (d) => actuation.actuation.lastHeard(d),
      appendInCommit: (author) => ingest.appendInCommit(author),
      authorName: (hex) => names.name(hex),
      logger: ctx.log,
      space,
    },
    { heardWithinMs: config.actuation.heardWithinSeconds * 1000, ...t },
  );
  return ctx.parts.add('settings', settings.start(), (s) => s.stop());
}
