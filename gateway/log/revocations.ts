/**
 * Device revocations carried in the log (enrolment blocks with `revokedAt`), kept per
 * (device, key) as the latest revocation and the latest plain enrolment seen:
 *
 *   log-revoked   [device, key hex] → latest revokedAt
 *   log-enrolled  [device, key hex] → latest enrolledAt of an enrolment without revokedAt
 *
 * A key is revoked when its latest revocation is later than its latest enrolment (so a
 * device revoked and enrolled again with the same key is active again). Maxima commute, so
 * the state does not depend on the order in which blocks arrive.
 */
import type { Database, RootDatabase } from 'lmdb';

export class Revocations {
  private readonly revokedDb: Database<number, [string, string]>;
  private readonly enrolledDb: Database<number, [string, string]>;
  private readonly revoked = new Map<string, Map<string, number>>();
  private readonly enrolled = new Map<string, Map<string, number>>();

  constructor(
    root: RootDatabase,
    private readonly track: (p: Promise<unknown>) => void,
  ) {
    this.revokedDb = root.openDB({ name: 'log-revoked' });
    this.enrolledDb = root.openDB({ name: 'log-enrolled' });
    for (const { key, value } of this.revokedDb.getRange()) this.raise(this.revoked, key[0], key[1], value);
    for (const { key, value } of this.enrolledDb.getRange()) this.raise(this.enrolled, key[0], key[1], value);
  }

  private raise(m: Map<string, Map<string, number>>, device: string, key: string, at: number): boolean {
    let d = m.get(device);
    if (!d) m.set(device, (d = new Map()));
    const prev = d.get(key);
    if (prev !== undefined && prev >= at) return false;
    d.set(key, at);
    return true;
  }

  /** An enrolment block: queues what it changes; true when the device's revocation state may have changed. */
  note(device: string, key: string, enrolledAt: number, revokedAt: number | undefined): boolean {
    if (revokedAt !== undefined) {
      if (!this.raise(this.revoked, device, key, revokedAt)) return false;
      this.track(this.revokedDb.put([device, key], revokedAt));
      return true;
    }
    if (!this.raise(this.enrolled, device, key, enrolledAt)) return false;
    this.track(this.enrolledDb.put([device, key], enrolledAt));
    return this.revoked.has(device);
  }

  /** The latest logged revocation of a key, if it is in force (not followed by a later enrolment). */
  revokedAt(device: string, key: string): number | undefined {
    const r = this.revoked.get(device)?.get(key);
    if (r === undefined) return undefined;
    return (this.enrolled.get(device)?.get(key) ?? 0) > r ? undefined : r;
  }

  /** The latest logged revocation of a key, in force or not. */
  lastRevocation(device: string, key: string): number | undefined {
    return this.revoked.get(device)?.get(key);
  }

  /**
   * From which receive time a device's frames are left out of the view: when every key
   * logged for it is revoked, the latest of those revocations.
   */
  /** Whether any key of the device has a logged revocation (else `since` is undefined whatever the keys). */
  hasRevoked(device: string): boolean {
    return this.revoked.has(device);
  }

  since(device: string, keys: readonly string[]): number | undefined {
    if (!this.revoked.has(device) || keys.length === 0) return undefined;
    let since = 0;
    for (const k of keys) {
      const at = this.revokedAt(device, k);
      if (at === undefined) return undefined;
      since = Math.max(since, at);
    }
    return since;
  }
}
