/**
 * Rollouts: a plan (devices in order, a canary count, cumulative step percents, a failure
 * threshold) logged as a signed `rollout` block; its progress as `devices` blocks (the device
 * states of a quarter of a second in one block; `device` blocks, one state each, from earlier
 * gateways are read the same) and `step` blocks, so every gateway holding the log shows the
 * same status (`rolloutStatus`).
 *
 * Stage 0 is the canary (its first `canary` devices), stage i the first ⌈steps[i] × N⌉. Every
 * gateway holding the rollout runs it (below); the runner offers the release to every device of the current stage that has not ended, and
 * moves on when all of them ended. It halts (a `step` block with `halted`) as soon as the
 * devices that failed or rolled back exceed the threshold of the devices offered so far:
 * nothing is offered past a halt.
 *
 * An operator's `control` blocks pause, resume or abort it. Whatever order they arrive in, an
 * abort wins over everything, and of pauses and resumes the latest (lamport, then hash) holds.
 * Paused, or outside its offer window (window.ts), the runner offers only to devices that took
 * the offer already (so they finish) and, paused, does not move to the next stage; aborted,
 * it stops serving its devices and never offers again.
 */
import { toHex } from '../../protocols/index.js';
import {
  type DeviceEntry,
  type FirmwareBody,
  firmwareBody,
  MAX_DEVICE_ENTRIES,
  type OfferWindow,
} from '../../protocols/firmware-block.js';
import { isFinalState, type UpdateState } from '../../protocols/firmware-transfer.js';
import type { BlockLog } from '../log/block-log.js';
import type { Logger } from '../logger.js';
import {
  type ControlBody,
  type DeviceBody,
  type FirmwareStore,
  type Logged,
  laterThan,
  type RolloutBody,
} from './releases.js';
import type { FirmwareTransfer, TransferEvent } from './transfer.js';
import { inOfferWindow } from './window.js';

export interface DeviceProgress {
  readonly state: UpdateState | 'pending';
  readonly percent: number;
  readonly reason: string;
  readonly at: number;
}

export interface RolloutStatus {
  readonly id: string;
  readonly digest: string;
  readonly author: string;
  readonly stages: readonly number[];
  /** The stage running (stages.length when done). */
  readonly stage: number;
  readonly halted: boolean;
  readonly done: boolean;
  readonly paused: boolean;
  readonly aborted: boolean;
  /** One word: aborted, halted, done, paused or running (in that precedence). */
  readonly state: 'aborted' | 'halted' | 'done' | 'paused' | 'running';
  readonly window?: OfferWindow;
  readonly devices: ReadonlyMap<string, DeviceProgress>;
  readonly counts: Readonly<Record<string, number>>;
}

/** Cumulative device counts of each stage. */
function stageSizes(r: RolloutBody): number[] {
  const n = r.devices.length;
  const out: number[] = [];
  if (r.canary > 0) out.push(Math.min(r.canary, n));
  for (const p of r.steps) out.push(Math.max(out.at(-1) ?? 0, Math.ceil((p * n) / 100)));
  return out;
}

/**
 * A rollout's controls folded: aborted if any block aborts it; paused if the latest of its
 * pause and resume blocks (lamport, then hash: the same on every gateway) is a pause.
 */
export function foldControls(
  controls: readonly Logged<ControlBody>[],
  id: string,
): { paused: boolean; aborted: boolean } {
  let aborted = false;
  let last: Logged<ControlBody> | undefined;
  for (const c of controls) {
    if (c.body.rollout !== id) continue;
    if (c.body.action === 'abort') aborted = true;
    else if (!last || laterThan(c, last)) last = c;
  }
  return { aborted, paused: last?.body.action === 'pause' };
}

/** Device states of a device that took the offer and has not ended: it may finish while paused. */
const TAKEN = new Set<string>(['offered', 'downloading', 'verified', 'installing']);

const progressOf = (d: DeviceBody | undefined): DeviceProgress =>
  d
    ? { state: d.state, percent: d.percent, reason: d.reason, at: d.at }
    : { state: 'pending', percent: 0, reason: '', at: 0 };

/**
 * `st` (a fold of its own, made by rolloutStatus) with `device`'s state now `d`: a device block
 * changes one device of the fold, so the runner patches its fold instead of folding the
 * rollout again (a fold per device block made ~1 000 objects each time: most of the garbage of
 * a 1 000-device rollout; bench/firmware-rollout.ts).
 */
export function patchDevice(st: RolloutStatus, device: string, d: DeviceBody): void {
  const devices = st.devices as Map<string, DeviceProgress>;
  const counts = st.counts as Record<string, number>;
  const old = devices.get(device);
  if (!old) return;
  const p = progressOf(d);
  devices.set(device, p);
  if (--counts[old.state]! === 0) delete counts[old.state];
  counts[p.state] = (counts[p.state] ?? 0) + 1;
}

/** A rollout's state as the log holds it (the same on every gateway holding the same blocks). */
export function rolloutStatus(store: FirmwareStore, id: string): RolloutStatus | undefined {
  const r = store.rollouts.get(id);
  if (!r) return undefined;
  const latest = store.latestStates(id);
  // Several gateways may log steps of one rollout: the furthest stage, unless one halted it
  // (then the earliest halt), so the fold does not depend on the order blocks arrived in.
  const steps = store.steps.filter((s) => s.body.rollout === id);
  const halts = steps.filter((s) => s.body.halted).map((s) => s.body.step);
  const halted = halts.length > 0;
  const stage = halted ? Math.min(...halts) : Math.max(0, ...steps.map((s) => s.body.step));
  const stages = stageSizes(r.body);
  const { paused, aborted } = foldControls(store.controls, id);
  const done = !halted && stage >= stages.length;
  const devices = new Map<string, DeviceProgress>();
  const counts: Record<string, number> = {};
  for (const dev of r.body.devices) {
    const p = progressOf(latest?.get(dev)?.body);
    devices.set(dev, p);
    counts[p.state] = (counts[p.state] ?? 0) + 1;
  }
  return {
    id,
    digest: toHex(r.body.digest),
    author: r.author,
    stages,
    stage,
    halted,
    done,
    paused,
    aborted,
    state: aborted ? 'aborted' : halted ? 'halted' : done ? 'done' : paused ? 'paused' : 'running',
    ...(r.body.window && { window: r.body.window }),
    devices,
    counts,
  };
}

export interface RolloutRunnerDeps {
  readonly log: BlockLog;
  readonly store: FirmwareStore;
  readonly transfer: FirmwareTransfer;
  readonly policy: string;
  readonly inCommit: (author: () => void) => void;
  readonly logger: Logger;
  /** A device not heard about the offer is offered again after this long. */
  readonly reofferMs?: number;
  /**
   * A device's download progress (the same state, a new 25 % step) is logged at most once in
   * this long; state changes are logged at once.
   */
  readonly progressEveryMs?: number;
  /**
   * Device states are logged together: the first one waits at most this long for others, and
   * all of them go in one `devices` block per rollout (at most MAX_DEVICE_ENTRIES a block).
   */
  readonly statesEveryMs?: number;
}

/** What the runner last logged of one device: its state, 25 % step of the download, and when. */
interface Recorded {
  state: UpdateState;
  bucket: number;
  at: number;
}

/** Runs this gateway's rollouts: offers, records each device's progress, moves through the stages. */
export class RolloutRunner {
  private timer?: NodeJS.Timeout;
  /** When each device was last offered, per rollout (keyed without building a string per device and tick). */
  private readonly offeredAt = new Map<string, Map<string, number>>();
  private soon?: NodeJS.Immediate;
  /** Per rollout and device, what was last logged, so progress is logged on change only (and coalesced). */
  private readonly recorded = new Map<string, Map<string, Recorded>>();
  /** Stage (or halt, as -1) authored per rollout and not yet back from the log. */
  private readonly authoredStage = new Map<string, number>();
  /** Aborted rollouts whose transfers were stopped. */
  private readonly stopped = new Set<string>();
  /**
   * Each rollout's fold until the store takes another body (a device block patches it):
   * reports come far more often than blocks, and folding every device's states on each one
   * cost O(devices²) over a rollout.
   */
  private readonly folded = new Map<string, RolloutStatus | undefined>();
  /** Device states not logged yet, per rollout, in the order they happened (`flushStates`). */
  private readonly pendingStates = new Map<string, DeviceEntry[]>();
  private flushTimer?: NodeJS.Timeout;
  private readonly unsubscribe: (() => void)[];

  constructor(private readonly d: RolloutRunnerDeps) {
    this.unsubscribe = [
      d.transfer.onReport((e) => this.onReport(e)),
      // A pause, resume or abort (own or a sibling's) takes effect at once, not at the next tick;
      // so does a step: the next stage's devices are offered as soon as its block is in; and a
      // device's end: the stage may advance (or halt) once the fold holds it.
      d.store.onBody((b) => {
        if (b.body.type === 'device' || b.body.type === 'devices') {
          const rollout = b.body.rollout;
          const states = b.body.type === 'device' ? [b.body] : b.body.entries;
          const st = this.folded.get(rollout);
          let ended = false;
          for (const s of states) {
            const latest = d.store.latestStates(rollout)?.get(s.device);
            if (st && latest) patchDevice(st, s.device, latest.body);
            ended ||= isFinalState(s.state);
          }
          if (ended) this.tickSoon();
          return;
        }
        this.folded.clear();
        if (b.body.type !== 'control' && b.body.type !== 'step') return;
        this.tickSoon();
      }),
    ];
  }

  start(intervalMs = 1000): this {
    this.timer = setInterval(() => this.tick(), intervalMs);
    this.timer.unref();
    this.tick();
    return this;
  }

  stop(): void {
    clearInterval(this.timer);
    clearImmediate(this.soon);
    this.timer = undefined;
    this.flushStates(); // into the commit loop, which stops after the runner
    for (const u of this.unsubscribe) u();
  }

  private author(body: FirmwareBody): void {
    this.d.inCommit(() => this.d.log.appendBlock({ kind: 'firmware', body: firmwareBody(body) }, this.d.policy));
  }

  /**
   * A device's state, logged with the others of the next `statesEveryMs` (250 ms): a rollout's
   * states came at ~250 a second to 1 000 devices, and each block is signed, written to five
   * tables (its envelope and four indexes, most keyed by its hash: a page each, wherever it falls)
   * and synced. Lost with the process if it dies within that time, as a block not yet committed
   * is: the fold then still has the device's earlier state, so the device is offered again and
   * says where it is (a device that ended repeats its outcome), and that is logged.
   */
  private record(rollout: string, e: DeviceEntry): void {
    let list = this.pendingStates.get(rollout);
    if (!list) this.pendingStates.set(rollout, (list = []));
    list.push(e);
    if (list.length >= MAX_DEVICE_ENTRIES) this.flushStates();
    else if (!this.flushTimer) {
      this.flushTimer = setTimeout(() => this.flushStates(), this.d.statesEveryMs ?? 250);
      this.flushTimer.unref();
    }
  }

  /** Hands the pending device states to the log, one `devices` block per rollout. */
  private flushStates(): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    for (const [rollout, entries] of this.pendingStates) this.author({ type: 'devices', rollout, entries });
    this.pendingStates.clear();
  }

  /**
   * The rollouts this gateway runs: every one it holds that has not ended, whoever logged it.
   * An offer reaches a device only through the gateway it is attached to (broker, port or radio), so each gateway
   * serves the devices attached to it, and a sibling carries on when the first gateway dies.
   * An aborted one's transfers are stopped here, once.
   */
  private mine(): RolloutStatus[] {
    const out: RolloutStatus[] = [];
    for (const id of this.d.store.rollouts.keys()) {
      if (!this.folded.has(id)) this.folded.set(id, rolloutStatus(this.d.store, id));
      const st = this.folded.get(id);
      if (st?.aborted && !this.stopped.has(id)) {
        this.stopped.add(id);
        this.d.transfer.dropRollout(id);
        this.d.logger.warn({ rollout: id }, `rollout ${id} aborted: nothing more is offered or sent`);
      }
      if (st && !st.halted && !st.done && !st.aborted) out.push(st);
    }
    return out;
  }

  private onReport(e: TransferEvent): void {
    for (const st of this.mine()) {
      if (!st.devices.has(e.device)) continue;
      // A device of a running rollout saying it is idle (its hello, or a download it gave up):
      // offer now rather than at the next retry.
      if (e.report.state === 'idle') this.offeredAt.get(st.id)?.delete(e.device);
      if (st.digest !== e.digest) continue;
      const r = e.report;
      const size = this.d.store.releases.get(st.digest)?.signed.manifest.size ?? 1;
      const percent = r.state === 'downloading' ? Math.min(100, Math.floor((r.offset * 100) / size)) : 0;
      const bucket = r.state === 'downloading' ? Math.floor(percent / 25) : 0;
      let recorded = this.recorded.get(st.id);
      if (!recorded) this.recorded.set(st.id, (recorded = new Map()));
      const last = recorded.get(e.device);
      const now = Date.now();
      if (last && last.state === r.state) {
        // The same state: only a download's progress is news, and not every report of it. Each
        // block is signed, written and synced to every sibling, and a sibling carrying the
        // rollout on resumes from the device's own reported offset, not from the log's percent:
        // a block per device per 25 % made most of a 1 000-device rollout's log and memory.
        if (r.state !== 'downloading' || last.bucket === bucket) continue;
        if (now - last.at < (this.d.progressEveryMs ?? 10_000)) continue;
      }
      if (isFinalState(st.devices.get(e.device)?.state as UpdateState) && !isFinalState(r.state)) continue;
      if (last) {
        last.state = r.state;
        last.bucket = bucket;
        last.at = now;
      } else recorded.set(e.device, { state: r.state, bucket, at: now });
      this.record(st.id, {
        device: e.device,
        state: r.state,
        percent,
        reason: [r.reason, r.detail].filter(Boolean).join(': ').slice(0, 200),
        at: now,
      });
      if (isFinalState(r.state)) {
        this.d.transfer.drop(e.device);
        this.d.logger.info(
          { rollout: st.id, device: e.device, state: r.state, reason: r.reason },
          `firmware ${r.state}`,
        );
        // The stage advances (or halts) once the block is in (onBody above): the fold reads the log.
      }
    }
  }

  /** One tick at the next turn of the event loop, however many asked for it (a burst of devices ending). */
  private tickSoon(): void {
    this.soon ??= setImmediate(() => {
      this.soon = undefined;
      if (this.timer) this.tick(); // not once stopped
    });
  }

  tick(): void {
    for (const st of this.mine()) this.advance(st);
  }

  private advance(st: RolloutStatus): void {
    const release = this.d.store.releases.get(st.digest);
    const r = this.d.store.rollouts.get(st.id)!.body;
    if (!release || !this.d.store.complete(release)) return;
    const authored = this.authoredStage.get(st.id);
    if (authored !== undefined && (authored < 0 || authored > st.stage)) return; // its step block is not durable yet
    const size = st.stages[st.stage] ?? r.devices.length;
    // One pass over the stage's devices (this runs after every device that ends).
    let failed = 0;
    const open: string[] = [];
    for (const d of r.devices.slice(0, size)) {
      const state = st.devices.get(d)!.state;
      if (state === 'failed' || state === 'rolled-back') failed++;
      else if (!isFinalState(state as UpdateState)) open.push(d);
    }
    if (failed * 100 > r.haltPercent * size) {
      this.author({ type: 'step', rollout: st.id, step: st.stage, halted: true, at: Date.now() });
      this.authoredStage.set(st.id, -1);
      for (const d of r.devices.slice(0, size)) this.d.transfer.drop(d);
      this.d.logger.warn(
        { rollout: st.id, stage: st.stage, failed, of: size },
        `rollout ${st.id} halted at stage ${st.stage}: ${failed} of ${size} devices failed`,
      );
      return;
    }
    if (open.length === 0 && !st.paused) {
      this.author({ type: 'step', rollout: st.id, step: st.stage + 1, halted: false, at: Date.now() });
      this.authoredStage.set(st.id, st.stage + 1);
      this.d.logger.info({ rollout: st.id, stage: st.stage + 1 }, `rollout ${st.id} reached stage ${st.stage + 1}`);
      return;
    }
    if (open.length === 0) return;
    const now = Date.now();
    // Paused or outside the window: nothing new, but a device that took the offer may finish.
    const onlyTaken = st.paused || !inOfferWindow(st.window, new Date(now));
    let offered = this.offeredAt.get(st.id);
    if (!offered) this.offeredAt.set(st.id, (offered = new Map()));
    for (const d of open) {
      if (onlyTaken && !TAKEN.has(st.devices.get(d)!.state)) continue;
      if (now - (offered.get(d) ?? 0) < (this.d.reofferMs ?? 10_000)) continue;
      offered.set(d, now);
      this.d.transfer.offer(d, release, st.id);
    }
  }
}
