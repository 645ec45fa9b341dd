/**
 * Actuation in the live gateway: durable frames tell it which devices it hears and over which
 * transport, and carry the devices' command-acks; leases come from the log (held blocks at
 * start, siblings' blocks as sync applies them); decisions and outcomes go to the log as
 * signed actuation blocks. `ruleFrames$` is the frame stream the rules engine runs on.
 * Rule `settings` decisions are queued for the settings part (gateway/settings/inbox.ts).
 */
import { filter, map, type Observable, type Subscription } from 'rxjs';
import { decodeBody, decodeSign1, kidToDeviceId, type SignedBlock, toHex } from '../../protocols/index.js';
import type { ActuationRecord } from '../../protocols/actuation.js';
import type { SettingsRecord } from '../../protocols/settings.js';
import { Actuation, type ActuationOptions } from '../../rules/actuation/index.js';
import type { Decision } from '../../rules/decision.js';
import { toRuleFrame, type RuleFrame } from '../../rules/frame.js';
import type { IngestedFrame } from '../ingest/outcome.js';
import type { BlockLog } from '../log/block-log.js';
import type { Logger } from '../logger.js';
import { actuationBlocks, leasesOf, LogJournal } from './journal.js';
import { DeviceRoutes, type RouteTargets } from './routes.js';
import { RuleSettingsQueue } from './rule-settings.js';

export interface GatewayActuationDeps {
  readonly gatewayId: string;
  readonly publicKey: Uint8Array;
  readonly sign: (m: Uint8Array) => Uint8Array;
  readonly frames$: Observable<IngestedFrame>;
  readonly blockLog: BlockLog;
  readonly device: (
    id: string,
  ) => { readonly model?: string | undefined; readonly site?: string | undefined } | undefined;
  readonly targets: () => RouteTargets;
  readonly logger: Logger;
  /** Authors log blocks inside the ingest commit loop (IngestPipeline.appendInCommit). */
  readonly appendInCommit?: (author: () => void) => void;
  /** MQTT publish for rule `publish` actions. */
  readonly publish?: (topic: string, payload: string) => Promise<void>;
  /** Rule `alert` decisions, for the notifiers (gateway/export/alerts.ts). */
  readonly alert?: (d: Decision & { action: { kind: 'alert' } }) => void;
  /** Rule `settings` decisions: queued as a `gateway devices set` is (gateway/settings/inbox.ts queueSettings); throws on a bad record. */
  readonly queueSettings?: (record: SettingsRecord) => void;
}

export type ActuationSettings = Pick<
  ActuationOptions,
  'leaseMs' | 'leaseGraceMs' | 'heardWithinMs' | 'retryMinMs' | 'retryMaxMs' | 'onSent' | 'clock'
>;

/** The state a reading reports for an actuator (its `act.<name>` record; firmware-sim/actuators.ts), read only when asked. */
function reportedState(f: IngestedFrame, actuator: string): string | number | boolean | undefined {
  const frame = toRuleFrame({ device: f.device, rxTime: f.rxTime }, f.body);
  const value = frame?.records.find((r) => r.name === `act.${actuator}`)?.value;
  return typeof value === 'object' ? undefined : value;
}

export class GatewayActuation {
  readonly actuation: Actuation;
  readonly routes: DeviceRoutes;
  readonly journal: LogJournal;
  /** Durable reading frames in the rules engine's shape. */
  readonly ruleFrames$: Observable<RuleFrame>;
  private readonly subs: Subscription[] = [];
  private readonly unsubscribeBlocks: () => void;
  private readonly ruleSettings: RuleSettingsQueue;

  constructor(deps: GatewayActuationDeps, settings: ActuationSettings = {}) {
    const self = toHex(deps.publicKey);
    const log = deps.logger.child({ component: 'actuation' });
    this.routes = new DeviceRoutes(deps.targets);
    this.journal = new LogJournal(deps.blockLog, log, deps.appendInCommit);
    this.ruleSettings = new RuleSettingsQueue(deps.queueSettings, log);
    this.actuation = new Actuation({
      ...settings,
      signer: { gatewayId: deps.gatewayId, sign: deps.sign },
      self,
      transport: this.routes,
      journal: this.journal,
      logger: log,
      onOtherAction: (d) => this.other(d, deps, log),
    });
    // Leases already in the log (ours and siblings'), so a restarted gateway keeps raising the fence;
    // and the last `issued` it used, so its next commands are not older than what devices obeyed.
    let held = 0;
    for (const b of actuationBlocks(deps.blockLog)) {
      for (const r of b.body as readonly ActuationRecord[]) {
        if (r.type === 'lease') {
          this.actuation.leases.observe(b.author, r);
          held++;
        } else if (r.type === 'decision' && r.command && b.author === self)
          this.actuation.issuedAfter(r.command.issued);
      }
    }
    if (held > 0) log.info({ leases: held }, 'lease records loaded from the log');
    // Siblings' leases as sync applies their blocks (ours are already in the table).
    this.unsubscribeBlocks = deps.blockLog.onDurableBlock((sb: SignedBlock) => {
      if (toHex(sb.block.author) === self) return;
      // A device that answered through a sibling (it moved, or hears both): its ack still ends our command.
      if (sb.block.kind === 'frames') {
        if (this.actuation.inFlight === 0) return;
        for (const f of sb.block.body) {
          const cose = decodeSign1(f.frame);
          if (!cose.ok) continue;
          const device = kidToDeviceId(cose.value.kid);
          if (device === undefined || !this.actuation.awaitsAck(device)) continue; // only devices we wait on
          const body = decodeBody(cose.value.payload);
          if (body.ok && body.value.type === 'command-ack') this.actuation.commandAck(device, body.value);
        }
        return;
      }
      const l = leasesOf(sb);
      if (l) for (const r of l.records) if (r.type === 'lease') this.actuation.leases.observe(l.holder, r);
    });
    // Registered before the rules engine subscribes, so a frame marks its device heard before rules see it.
    this.subs.push(
      deps.frames$.subscribe((f) => {
        this.routes.heard(f.device, f.transport);
        this.actuation.deviceHeard(f.device, f.rxTime, (actuator) => reportedState(f, actuator));
        if (f.body.type === 'command-ack') this.actuation.commandAck(f.device, f.body);
      }),
    );
    this.ruleFrames$ = deps.frames$.pipe(
      map((f) => {
        const d = deps.device(f.device);
        return toRuleFrame({ device: f.device, rxTime: f.rxTime, model: d?.model, site: d?.site }, f.body);
      }),
      filter((f): f is RuleFrame => f !== undefined),
    );
  }

  private other(d: Decision, deps: GatewayActuationDeps, log: Logger): void {
    const a = d.action;
    if (a.kind === 'publish') {
      if (!deps.publish)
        return log.warn({ rule: d.rule, topic: a.topic }, 'publish action without an MQTT broker: dropped');
      deps
        .publish(a.topic, a.payload)
        .catch((err: unknown) => log.warn({ rule: d.rule, topic: a.topic, err: String(err) }, 'publish action failed'));
    } else if (a.kind === 'alert') {
      log.warn(
        { rule: d.rule, ruleVersion: d.ruleVersion, inputs: d.inputs, reason: d.reason, alert: a.message },
        `alert: ${a.message}`,
      );
      deps.alert?.({ ...d, action: a });
    } else if (a.kind === 'settings') this.ruleSettings.decide({ ...d, action: a });
  }

  status(now = Date.now()): Record<string, unknown> {
    return {
      ...this.actuation.stats,
      inFlight: this.actuation.inFlight,
      sent: this.routes.sent,
      auditBlocks: this.journal.blocks,
      leases: this.actuation.leases.snapshot(now).map((l) => ({
        device: l.device,
        actuator: l.actuator,
        holder: l.lease.holder,
        fence: l.lease.fence,
        at: l.lease.at,
        // A device's report of another holder has no expiry: it stands until the log shows that lease.
        ...(l.lease.expires !== undefined && { expires: l.lease.expires }),
      })),
    };
  }

  /** Ends tracking (commands in flight are reported as expired) and writes the last audit records. */
  stop(): void {
    for (const s of this.subs) s.unsubscribe();
    this.unsubscribeBlocks();
    this.actuation.close();
    this.journal.flush();
  }
}
