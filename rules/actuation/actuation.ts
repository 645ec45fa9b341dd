/**
 * Actuation: the DecisionSink of the live rules engine. A command decision becomes a command
 * signed by this gateway under a lease with a fencing token, sent over the device's own
 * transport, tracked to a final state, and recorded for the audit (decision, lease and
 * outcome records in signed `actuation` blocks). Transport-free: the gateway adapter
 * (gateway/actuation/) provides the transport, the journal and the frames it hears.
 *
 * Every decision is journaled, commands or not; `outcomes$` reports each command's final state
 * back to the rules engine (and to status, metrics and the log through the adapter).
 */
import { Subject } from 'rxjs';
import { AckStatus, type CommandAckBody, toHex } from '../../protocols/index.js';
import type { ActuationRecord, DecisionRecord, OutcomeRecord } from '../../protocols/actuation.js';
import type { CommandIntent, Decision, DecisionSink } from '../decision.js';
import { type GatewaySigner, COMMAND_ID_BYTES, type SignedCommand, signCommand } from './command.js';
import { DeliveryGuard, type InterlockSpec } from './delivery-guard.js';
import { LeaseTable } from './leases.js';
import { type Clock, type CommandTransport, CommandTracker, type FinalOutcome, systemClock } from './tracker.js';

export interface ActuationJournal {
  /** Queues records for the log; written as signed actuation blocks, in order. */
  record(records: readonly ActuationRecord[]): void;
}

export interface ActuationLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface ActuationOptions {
  readonly signer: GatewaySigner;
  /** This gateway's key (hex): its identity as a lease holder, the author of its lease blocks. */
  readonly self: string;
  readonly transport: CommandTransport;
  readonly journal: ActuationJournal;
  readonly clock?: Clock;
  /** Lease duration (default 30 s). */
  readonly leaseMs?: number;
  /** After a sibling's lease expires, how long before this gateway may take it (default half the lease). */
  readonly leaseGraceMs?: number;
  /** Commands only for devices heard within this long (default 60 s): a lease needs a device we hear. */
  readonly heardWithinMs?: number;
  readonly retryMinMs?: number;
  readonly retryMaxMs?: number;
  readonly randomId?: () => Uint8Array;
  readonly logger?: ActuationLogger;
  /** Decisions that are not commands (MQTT publish, alerts): carried out by the adapter. */
  readonly onOtherAction?: (d: Decision) => void;
  /** A command handed to the transport for the first time (bench: frame-to-command latency). */
  readonly onSent?: (c: SignedCommand) => void;
}

/** A command's final state as reported to the rules engine. */
export interface CommandOutcome extends Omit<OutcomeRecord, 'type' | 'commandId'> {
  readonly commandId: string;
  readonly rule: string;
  readonly value: CommandIntent['value'];
  readonly latencyMs: number;
}

export interface ActuationStats {
  decisions: number;
  commands: number;
  acked: number;
  refused: number;
  expired: number;
  noRoute: number;
  noLease: number;
  superseded: number;
  /** Held back by a delivery interlock until they expired. */
  interlocked: number;
  /** Devices reporting a forged command (signature did not verify). */
  forgeryReports: number;
  /** Devices reporting a command id seen before. */
  replayReports: number;
  /** New leases taken (a fence of our own). */
  leasesTaken: number;
  /** Our leases renewed (as commands flow or as the device is heard). */
  leaseRenewals: number;
  /** Desired states sent again when their device was heard after they ended `no-route`. */
  resent: number;
}

/** An actuator's state as the device's frame reports it (`act.<name>` records), if it does. */
export type ReportedState = (actuator: string) => CommandIntent['value'] | undefined;

/** The reason of a decision that re-sends a desired state (the original reason follows). */
export const RESENT_REASON = 'desired state re-sent: device heard';

const STATE_STAT = {
  acked: 'acked',
  refused: 'refused',
  expired: 'expired',
  'no-route': 'noRoute',
  'no-lease': 'noLease',
  superseded: 'superseded',
  interlocked: 'interlocked',
} as const;

export class Actuation implements DecisionSink {
  readonly outcomes$ = new Subject<CommandOutcome>();
  readonly stats: ActuationStats = {
    decisions: 0,
    commands: 0,
    acked: 0,
    refused: 0,
    expired: 0,
    noRoute: 0,
    noLease: 0,
    superseded: 0,
    interlocked: 0,
    forgeryReports: 0,
    replayReports: 0,
    leasesTaken: 0,
    leaseRenewals: 0,
    resent: 0,
  };
  readonly leases: LeaseTable;
  readonly guard = new DeliveryGuard();
  private readonly tracker: CommandTracker;
  private readonly clock: Clock;
  /** Device → when a frame of it was last stored. */
  private readonly heard = new Map<string, number>();
  /** Command key → the rule and actuator it came from, until its final state. */
  private readonly issuedBy = new Map<string, { readonly rule: string; readonly actuator: string; tracked: boolean }>();
  /**
   * Device → actuator → the latest command decided for it, `pending` while that command ended
   * `no-route` and nothing newer was decided: it is sent again when the device is heard.
   */
  private readonly desired = new Map<string, Map<string, { decision: Decision; pending: boolean }>>();
  /** Device → commands in flight to it. */
  private readonly waiting = new Map<string, number>();
  private lastIssued = 0;
  private readonly randomId: () => Uint8Array;

  constructor(private readonly opts: ActuationOptions) {
    this.clock = opts.clock ?? systemClock;
    const leaseMs = opts.leaseMs ?? 30_000;
    this.leases = new LeaseTable(opts.self, leaseMs, opts.leaseGraceMs ?? leaseMs / 2);
    this.randomId = opts.randomId ?? (() => crypto.getRandomValues(new Uint8Array(COMMAND_ID_BYTES)));
    this.tracker = new CommandTracker({
      transport: opts.transport,
      clock: this.clock,
      retryMinMs: opts.retryMinMs ?? 250,
      retryMaxMs: opts.retryMaxMs ?? 4000,
      onFinal: (o) => this.final(o),
      onReport: (device, ack, inFlight) => this.report(device, ack, inFlight),
      ...(opts.onSent && { onSent: (c: SignedCommand) => opts.onSent!(c) }),
      guard: (c) => {
        const b = c.body;
        const why = this.guard.blocked(b.target, b.actuator, b.value);
        if (why === undefined) this.guard.sent(c.key, b.target, b.actuator, b.value); // before the send: no window for a conflicting one
        return why;
      },
    });
  }

  /**
   * The latest `issued` this gateway ever used (from its log at start): new commands are issued
   * after it even if the clock went back, since devices refuse a command issued before the last
   * one they obeyed from the same lease holder.
   */
  issuedAfter(t: number): void {
    this.lastIssued = Math.max(this.lastIssued, t);
  }

  /** Interlocks also enforced at delivery (the rule set's: the live engine refuses to decide them). */
  setInterlocks(interlocks: readonly InterlockSpec[]): void {
    this.guard.set(interlocks);
  }

  /** Commands being tracked. */
  get inFlight(): number {
    return this.tracker.size;
  }

  /** Whether a command to `device` waits for its ack (so its acks are worth looking for elsewhere). */
  awaitsAck(device: string): boolean {
    return (this.waiting.get(device) ?? 0) > 0;
  }

  /**
   * A frame from `device` was stored: it is reachable (leases are only taken for devices we
   * hear), and the leases we hold on it are renewed: a holder that keeps hearing its device
   * keeps the lease.
   */
  deviceHeard(device: string, at: number = this.clock.now(), reported?: ReportedState): void {
    this.heard.set(device, Math.max(at, this.heard.get(device) ?? at));
    const renewed = this.leases.renewHeard(device, this.clock.now());
    if (renewed.length > 0) {
      this.stats.leaseRenewals += renewed.length;
      this.opts.journal.record(renewed);
    }
    this.resendDesired(device, reported);
  }

  /**
   * The device is reachable again: what the rules last wanted of its actuators and could not
   * send (`no-route`: never heard, or silent too long) goes out now, as a new decision of the
   * same rule. Only those: a command in flight or acked is the desired state already, and
   * sending it again would supersede it. Nor when the frame reports the actuator in that state
   * already (a device powering on in the state the rules want).
   */
  private resendDesired(device: string, reported: ReportedState | undefined): void {
    const byActuator = this.desired.get(device);
    if (!byActuator) return;
    for (const [actuator, d] of byActuator) {
      if (!d.pending) continue;
      d.pending = false;
      if (d.decision.action.kind === 'command' && reported?.(actuator) === d.decision.action.command.value) continue;
      this.stats.resent++;
      const reason = `${RESENT_REASON} (${d.decision.reason})`.slice(0, 512);
      this.opts.logger?.info(
        { device, rule: d.decision.rule, action: d.decision.action },
        `desired state re-sent: ${device} heard`,
      );
      this.decide({ ...d.decision, at: this.clock.now(), reason });
    }
  }

  /** When a frame of `device` was last stored (undefined: never heard by this gateway). */
  lastHeard(device: string): number | undefined {
    return this.heard.get(device);
  }

  /** A command-ack frame from `device` (verified and durable). */
  commandAck(device: string, ack: CommandAckBody): void {
    const key = toHex(ack.commandId);
    if (ack.status === AckStatus.fenced) {
      // "fence N refused: F is held by gw-x": another gateway drives this actuator; stand back.
      const m = /(\d+) is held by (\S+)$/.exec(ack.detail ?? '');
      const actuator = this.issuedBy.get(key)?.actuator;
      if (m && actuator) this.leases.fencedBy(device, actuator, m[2]!, Number(m[1]), this.clock.now());
    }
    this.tracker.onAck(device, ack, key);
  }

  decide(decision: Decision): void {
    this.stats.decisions++;
    const a = decision.action;
    const base: DecisionRecord = {
      type: 'decision',
      at: decision.at,
      rule: decision.rule,
      ruleVersion: decision.ruleVersion,
      inputs: decision.inputs.map((f) => ({ device: f.device, boot: f.boot, seq: f.seq })),
      reason: decision.reason,
      action: a,
    };
    if (a.kind !== 'command') {
      this.opts.journal.record([base]);
      this.opts.onOtherAction?.(decision);
      return;
    }
    const intent = a.command;
    const now = this.clock.now();
    const issued = (this.lastIssued = Math.max(now, this.lastIssued + 1)); // strictly increasing: the device orders by it
    const id = this.randomId();
    const heardAt = this.heard.get(intent.device);
    const heardWithin = this.opts.heardWithinMs ?? 60_000;
    let unroutable: { state: 'no-route' | 'no-lease'; detail: string } | undefined;
    let claim: ReturnType<LeaseTable['claim']> | undefined;
    if (heardAt === undefined || now - heardAt > heardWithin)
      unroutable = {
        state: 'no-route',
        detail:
          heardAt === undefined
            ? `${intent.device} never heard by this gateway`
            : `${intent.device} not heard for ${now - heardAt} ms`,
      };
    else {
      claim = this.leases.claim(intent.device, intent.actuator, now, heardAt);
      if (!claim.ok) unroutable = { state: 'no-lease', detail: claim.detail };
    }
    let command: SignedCommand;
    try {
      command = signCommand(intent, { id, issued, ...(claim?.ok && { fence: claim.fence }) }, this.opts.signer);
    } catch (err) {
      // A rule asking for an impossible command (bad ttl) is its own fault: logged, the rest go on.
      this.opts.logger?.warn({ rule: decision.rule, err: String(err) }, 'command not issued');
      this.opts.journal.record([base]);
      return;
    }
    this.stats.commands++;
    const records: ActuationRecord[] = [];
    if (claim?.ok && claim.record) {
      records.push(claim.record);
      if (claim.taken) this.stats.leasesTaken++;
      else this.stats.leaseRenewals++;
    }
    records.push({
      ...base,
      command: {
        id,
        issued,
        expires: command.body.expires,
        ...(command.body.fence !== undefined && { fence: command.body.fence }),
      },
    });
    this.opts.journal.record(records);
    const entry = { rule: decision.rule, actuator: intent.actuator, tracked: false };
    this.issuedBy.set(command.key, entry);
    let byActuator = this.desired.get(intent.device);
    if (!byActuator) this.desired.set(intent.device, (byActuator = new Map()));
    byActuator.set(intent.actuator, { decision, pending: unroutable?.state === 'no-route' });
    if (unroutable) {
      this.final({ command, state: unroutable.state, attempts: 0, at: now, latencyMs: 0, detail: unroutable.detail });
      return;
    }
    entry.tracked = true;
    this.waiting.set(intent.device, (this.waiting.get(intent.device) ?? 0) + 1);
    this.tracker.start(command);
  }

  private final(o: FinalOutcome): void {
    const c = o.command.body;
    this.stats[STATE_STAT[o.state]]++;
    this.guard.final(o.command.key, c.target, c.actuator, c.value, o.state, o.attempts, o.ackStatus !== undefined);
    const rec: OutcomeRecord = {
      type: 'outcome',
      at: o.at,
      commandId: c.id,
      state: o.state,
      attempts: o.attempts,
      device: c.target,
      actuator: c.actuator,
      ...(o.ackStatus !== undefined && { ackStatus: o.ackStatus }),
      ...(o.detail !== undefined && { detail: o.detail.slice(0, 1024) }),
    };
    this.opts.journal.record([rec]);
    const by = this.issuedBy.get(o.command.key);
    this.issuedBy.delete(o.command.key);
    if (by?.tracked) {
      const n = (this.waiting.get(c.target) ?? 1) - 1;
      if (n > 0) this.waiting.set(c.target, n);
      else this.waiting.delete(c.target);
    }
    const rule = by?.rule ?? '';
    const out: CommandOutcome = { ...rec, commandId: o.command.key, rule, value: c.value, latencyMs: o.latencyMs };
    const log = {
      device: c.target,
      actuator: c.actuator,
      command: o.command.key,
      rule,
      state: o.state,
      attempts: o.attempts,
      detail: o.detail,
    };
    if (o.state === 'acked')
      this.opts.logger?.info(log, `command ${c.target}/${c.actuator} = ${String(c.value)} acked`);
    else this.opts.logger?.warn(log, `command ${c.target}/${c.actuator} = ${String(c.value)} ended ${o.state}`);
    this.outcomes$.next(out);
    // This may have cleared an interlock another command is held on.
    if (this.guard.size > 0) this.tracker.retryHeld();
  }

  private report(device: string, ack: CommandAckBody, inFlight: boolean): void {
    if (ack.status === AckStatus.badSignature) this.stats.forgeryReports++;
    else if (ack.status === AckStatus.replayed) this.stats.replayReports++;
    else return; // a late ack for a command already final
    const what = ack.status === AckStatus.badSignature ? 'a forged command' : 'a replayed command';
    this.opts.logger?.warn(
      { device, command: toHex(ack.commandId), status: ack.status, detail: ack.detail, ours: inFlight },
      `device ${device} refused ${what}`,
    );
  }

  /** Ends tracking (gateway shutdown). */
  close(): void {
    this.tracker.close();
    this.outcomes$.complete();
  }
}
