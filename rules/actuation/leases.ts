/**
 * Leases with fencing tokens: which gateway may drive an actuator (ownership
 * across siblings). Pure state; the gateway feeds it the lease records of every actuation
 * block it holds (its own and its siblings', through sync) and the fences devices report.
 *
 * - A gateway claims (device, actuator) only for a device it hears, and only when no other
 *   gateway holds an unexpired lease in its view. A new lease takes fence = the highest fence
 *   it has seen for that actuator + 1; renewing keeps the fence and moves the expiry.
 * - Leases are records in signed `actuation` blocks, so siblings learn them by sync and the
 *   fence grows across gateways along the log's causal order.
 * - Two partitioned gateways can both claim (the same fence, or one ahead): the device keeps
 *   the highest (fence, gateway) it obeyed and refuses the rest (firmware-sim/actuators.ts), so
 *   only one drives. A gateway refused as fenced records that as evidence of the other's lease
 *   and stands back for a whole lease period.
 */
import type { LeaseRecord } from '../../protocols/actuation.js';

export interface Lease {
  /** The holder's gateway key (hex), the author of the lease block; or a device-reported gateway id. */
  readonly holder: string;
  readonly fence: number;
  /** When it was taken or last renewed, ms. */
  readonly at: number;
  readonly expires: number;
}

export type Claim =
  | {
      readonly ok: true;
      readonly fence: number;
      readonly expires: number /** A record to log (new lease or renewal), if any. */;
      readonly record?: LeaseRecord;
    }
  | { readonly ok: false; readonly holder: string; readonly fence: number; readonly expires: number };

const key = (device: string, actuator: string): string => `${device}\u0000${actuator}`;

export class LeaseTable {
  /** Per actuator: the latest lease of each holder. */
  private readonly leases = new Map<string, Map<string, Lease>>();
  private readonly maxFence = new Map<string, number>();

  constructor(
    /** This gateway as a lease holder (its key hex). */
    readonly self: string,
    readonly leaseMs: number,
  ) {
    if (!(leaseMs > 0)) throw new RangeError('leaseMs must be positive');
  }

  /** A lease record from the log (`holder` = the block's author key hex). */
  observe(holder: string, r: LeaseRecord): void {
    this.put(r.device, r.actuator, { holder, fence: r.fence, at: r.at, expires: r.expires });
  }

  /** A device refused our command as fenced: another gateway drives it with `fence`. */
  fencedBy(device: string, actuator: string, holder: string, fence: number, now: number): void {
    this.put(device, actuator, { holder: `device-report:${holder}`, fence, at: now, expires: now + this.leaseMs });
    // Our own lease on it is dead: forget it, so we neither renew nor use it.
    this.leases.get(key(device, actuator))?.delete(this.self);
  }

  private put(device: string, actuator: string, l: Lease): void {
    const k = key(device, actuator);
    let m = this.leases.get(k);
    if (!m) this.leases.set(k, (m = new Map()));
    const cur = m.get(l.holder);
    if (!cur || l.fence > cur.fence || (l.fence === cur.fence && l.expires > cur.expires)) m.set(l.holder, l);
    if (l.fence > (this.maxFence.get(k) ?? 0)) this.maxFence.set(k, l.fence);
  }

  highestFence(device: string, actuator: string): number {
    return this.maxFence.get(key(device, actuator)) ?? 0;
  }

  /** The lease in force at `now`: the unexpired one with the highest fence (earliest taken on a tie). */
  current(device: string, actuator: string, now: number): Lease | undefined {
    let best: Lease | undefined;
    for (const l of this.leases.get(key(device, actuator))?.values() ?? []) {
      if (l.expires <= now) continue;
      if (
        !best ||
        l.fence > best.fence ||
        (l.fence === best.fence && (l.at < best.at || (l.at === best.at && l.holder < best.holder)))
      )
        best = l;
    }
    return best;
  }

  /** Takes, keeps or renews our lease on an actuator; refuses while another gateway holds one. */
  claim(device: string, actuator: string, now: number): Claim {
    const cur = this.current(device, actuator, now);
    if (cur && cur.holder !== this.self)
      return { ok: false, holder: cur.holder, fence: cur.fence, expires: cur.expires };
    const expires = now + this.leaseMs;
    if (cur) {
      // Renew once half of it has run out: one record per half lease, not per command.
      if (cur.expires - now > this.leaseMs / 2) return { ok: true, fence: cur.fence, expires: cur.expires };
      const record: LeaseRecord = { type: 'lease', at: now, device, actuator, fence: cur.fence, expires };
      this.observe(this.self, record);
      return { ok: true, fence: cur.fence, expires, record };
    }
    const record: LeaseRecord = {
      type: 'lease',
      at: now,
      device,
      actuator,
      fence: this.highestFence(device, actuator) + 1,
      expires,
    };
    this.observe(this.self, record);
    return { ok: true, fence: record.fence, expires, record };
  }

  /** Every lease in force (status, tests). */
  snapshot(now: number): { device: string; actuator: string; lease: Lease }[] {
    const out: { device: string; actuator: string; lease: Lease }[] = [];
    for (const k of this.leases.keys()) {
      const [device, actuator] = k.split('\u0000') as [string, string];
      const l = this.current(device, actuator, now);
      if (l) out.push({ device, actuator, lease: l });
    }
    return out;
  }
}
