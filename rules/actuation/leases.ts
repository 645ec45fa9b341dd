/**
 * Leases with fencing tokens: which gateway may drive an actuator (ownership across
 * siblings). Pure state; the gateway feeds it the lease records of every actuation block it
 * holds (its own and its siblings', through sync) and the fences devices report.
 *
 * - A gateway claims (device, actuator) only for a device it hears. A new lease takes
 *   fence = the highest fence it has seen for that actuator + 1; renewing keeps the fence and
 *   moves the expiry. The holder renews as it hears the device (`renewHeard`, once half of the
 *   lease has run), so a holder that keeps hearing the device keeps the lease, commands or not.
 * - Leases are records in signed `actuation` blocks, so siblings learn them by sync and the
 *   fence grows across gateways along the log's causal order.
 * - A sibling may take over only after the holder's lease expired plus a grace period, and only
 *   if it heard the device more recently than the holder's last renewal (its `at`).
 * - Two partitioned gateways can both claim: the device keeps the highest (fence, gateway) it
 *   obeyed and refuses the rest (firmware-sim/actuators.ts), so only one drives. A gateway
 *   refused as fenced keeps that report as evidence and stands back until its log holds a
 *   lease of another gateway at that fence or higher: time alone does not end it, since a
 *   sibling cut off by a partition cannot see the holder's renewals. So a symmetric partition
 *   hands the lease over at most once (the sibling that stopped seeing renewals takes it; the
 *   old holder is refused once and stays back) instead of alternating once per lease period.
 */
import type { LeaseRecord } from '../../protocols/actuation.js';

export interface Lease {
  /** The holder's gateway key (hex), the author of the lease block; or `device-report:<gateway id>`. */
  readonly holder: string;
  readonly fence: number;
  /** When it was taken or last renewed, ms (the holder renews as it hears the device). */
  readonly at: number;
  /** Undefined for a device's report, which holds until the log shows that lease (see above). */
  readonly expires?: number;
}

interface LogLease extends Lease {
  readonly expires: number;
}

export type Claim =
  | {
      readonly ok: true;
      readonly fence: number;
      readonly expires: number;
      /** A record to log (new lease or renewal), if any. */
      readonly record?: LeaseRecord;
      /** A new lease (a fence of our own), not a renewal. */
      readonly taken?: boolean;
    }
  | { readonly ok: false; readonly holder: string; readonly fence: number; readonly detail: string };

interface Entry {
  /** The latest lease of each holder, from the log (ours included). */
  readonly leases: Map<string, LogLease>;
  maxFence: number;
  /** The highest fence a device reported holding for another gateway when it refused ours. */
  report?: { readonly gateway: string; readonly fence: number; at: number };
}

const key = (device: string, actuator: string): string => `${device}\u0000${actuator}`;
const iso = (t: number): string => new Date(t).toISOString();

export class LeaseTable {
  private readonly entries = new Map<string, Entry>();
  /** Device → the actuators we ever held a lease on (renewed as we hear the device). */
  private readonly held = new Map<string, Set<string>>();

  constructor(
    /** This gateway as a lease holder (its key hex). */
    readonly self: string,
    readonly leaseMs: number,
    /** After another gateway's lease expires, how long before we may take it. */
    readonly graceMs: number = leaseMs / 2,
  ) {
    if (!(leaseMs > 0)) throw new RangeError('leaseMs must be positive');
    if (!(graceMs >= 0)) throw new RangeError('graceMs must not be negative');
  }

  private entry(device: string, actuator: string): Entry {
    const k = key(device, actuator);
    let e = this.entries.get(k);
    if (!e) this.entries.set(k, (e = { leases: new Map(), maxFence: 0 }));
    return e;
  }

  /** A lease record from the log (`holder` = the block's author key hex). */
  observe(holder: string, r: LeaseRecord): void {
    const e = this.entry(r.device, r.actuator);
    const cur = e.leases.get(holder);
    if (!cur || r.fence > cur.fence || (r.fence === cur.fence && r.expires > cur.expires))
      e.leases.set(holder, { holder, fence: r.fence, at: r.at, expires: r.expires });
    if (r.fence > e.maxFence) e.maxFence = r.fence;
    if (holder === this.self) {
      let s = this.held.get(r.device);
      if (!s) this.held.set(r.device, (s = new Set()));
      s.add(r.actuator);
    }
  }

  /** A device refused our command as fenced: gateway `gateway` drives it with `fence`. */
  fencedBy(device: string, actuator: string, gateway: string, fence: number, now: number): void {
    const e = this.entry(device, actuator);
    if (!e.report || fence > e.report.fence) e.report = { gateway, fence, at: now };
    else if (fence === e.report.fence) e.report.at = Math.max(e.report.at, now);
    if (fence > e.maxFence) e.maxFence = fence;
    // Our own lease on it is dead: forget it, so we neither renew nor use it.
    e.leases.delete(this.self);
  }

  highestFence(device: string, actuator: string): number {
    return this.entries.get(key(device, actuator))?.maxFence ?? 0;
  }

  /**
   * The device's report stands until the log holds another gateway's lease at that fence or
   * higher (from then on that lease's own expiry decides).
   */
  private reportInForce(e: Entry): Entry['report'] {
    const r = e.report;
    if (!r) return undefined;
    for (const l of e.leases.values()) if (l.holder !== this.self && l.fence >= r.fence) return undefined;
    return r;
  }

  /** Whether a log lease still counts at `now`: ours until it expires, another's until expiry + grace. */
  private live(l: LogLease, now: number): boolean {
    return l.holder === this.self ? l.expires > now : l.expires + this.graceMs > now;
  }

  /**
   * The lease in force at `now`: a device's report, else the live one with the highest fence.
   * On a tie (two partitioned gateways took the same fence) our own: we send, and the device,
   * which obeyed whichever came first, refuses the other and so tells it.
   */
  current(device: string, actuator: string, now: number): Lease | undefined {
    const e = this.entries.get(key(device, actuator));
    if (!e) return undefined;
    const r = this.reportInForce(e);
    if (r) return { holder: `device-report:${r.gateway}`, fence: r.fence, at: r.at };
    let best: LogLease | undefined;
    for (const l of e.leases.values()) {
      if (!this.live(l, now)) continue;
      if (
        !best ||
        l.fence > best.fence ||
        (l.fence === best.fence &&
          best.holder !== this.self &&
          (l.holder === this.self || l.at < best.at || (l.at === best.at && l.holder < best.holder)))
      )
        best = l;
    }
    return best;
  }

  /**
   * Takes, keeps or renews our lease on an actuator of a device we last heard at `heardAt`;
   * refuses while another gateway's lease is in force (expiry + grace), while the device's
   * report of another holder stands, or when the last holder heard the device at least as
   * recently as we did.
   */
  claim(device: string, actuator: string, now: number, heardAt: number = now): Claim {
    const cur = this.current(device, actuator, now);
    if (cur && cur.holder !== this.self) {
      const detail =
        cur.expires === undefined
          ? `lease on ${device}/${actuator}: the device reported fence ${cur.fence} held by ${cur.holder.slice('device-report:'.length)} at ${iso(cur.at)}; standing back until the log shows that lease`
          : `lease on ${device}/${actuator} held by ${cur.holder} (fence ${cur.fence}) until ${iso(cur.expires)}, plus ${this.graceMs} ms grace`;
      return { ok: false, holder: cur.holder, fence: cur.fence, detail };
    }
    if (cur?.expires !== undefined) return this.renew(device, actuator, cur.fence, cur.expires, now);
    // Nobody holds it: the last holder (if another) must have heard the device less recently than we did.
    let last: LogLease | undefined;
    for (const l of this.entries.get(key(device, actuator))?.leases.values() ?? [])
      if (l.holder !== this.self && (!last || l.at > last.at)) last = l;
    if (last && heardAt <= last.at)
      return {
        ok: false,
        holder: last.holder,
        fence: last.fence,
        detail: `lease on ${device}/${actuator}: its last holder ${last.holder} (fence ${last.fence}) heard the device at ${iso(last.at)}, we last at ${iso(heardAt)}`,
      };
    const record: LeaseRecord = {
      type: 'lease',
      at: now,
      device,
      actuator,
      fence: this.highestFence(device, actuator) + 1,
      expires: now + this.leaseMs,
    };
    this.observe(this.self, record);
    return { ok: true, fence: record.fence, expires: record.expires, record, taken: true };
  }

  /** Renews our lease once half of it has run out: one record per half lease, not per command or frame. */
  private renew(device: string, actuator: string, fence: number, expires: number, now: number): Claim {
    if (expires - now > this.leaseMs / 2) return { ok: true, fence, expires };
    const record: LeaseRecord = { type: 'lease', at: now, device, actuator, fence, expires: now + this.leaseMs };
    this.observe(this.self, record);
    return { ok: true, fence, expires: record.expires, record };
  }

  /** We heard `device`: the leases we hold on its actuators are renewed (records to log). */
  renewHeard(device: string, now: number): LeaseRecord[] {
    const out: LeaseRecord[] = [];
    for (const actuator of this.held.get(device) ?? []) {
      const cur = this.current(device, actuator, now);
      if (cur?.holder !== this.self || cur.expires === undefined) continue;
      const c = this.renew(device, actuator, cur.fence, cur.expires, now);
      if (c.ok && c.record) out.push(c.record);
    }
    return out;
  }

  /** Every lease in force (status, tests); a device's report has no expiry. */
  snapshot(now: number): { device: string; actuator: string; lease: Lease }[] {
    const out: { device: string; actuator: string; lease: Lease }[] = [];
    for (const k of this.entries.keys()) {
      const [device, actuator] = k.split('\u0000') as [string, string];
      const l = this.current(device, actuator, now);
      if (l) out.push({ device, actuator, lease: l });
    }
    return out;
  }
}
