/**
 * Device registry: who may send frames, under which Ed25519 key. Persisted in
 * the store and read through on every lookup (an lmdb get costs about a
 * microsecond), so enrolments and revocations made by the CLI while the
 * gateway runs take effect at once. `active` (ingest's and the broker's lookup)
 * compares the stored bytes with those it decoded last and decodes only when they
 * changed. Enrolments and revocations that would write are refused by the
 * free-space guard while the disk is low (the record stays as it was).
 */
import {
  bytesEqual,
  checkEd25519PublicKey,
  fromHex,
  isValidId,
  parsePublicKey,
  publicKeyToDidKey,
} from '../protocols/index.js';
import type { Logger } from './logger.js';
import { DiskLowError, type FreeSpaceGuard } from './store/free-space.js';
import type { DeviceRecord, Store } from './store/store.js';

export class RegistryError extends Error {
  constructor(
    readonly code: 'registry/bad-id' | 'registry/bad-key' | 'registry/exists' | 'registry/unknown',
    message: string,
  ) {
    super(message);
    this.name = 'RegistryError';
  }
}

export interface Enrolment {
  readonly id: string;
  /** 64 hex digits or a did:key. */
  readonly publicKey: string;
  readonly site?: string;
  readonly model?: string;
  readonly name?: string;
}

export interface ActiveDevice {
  readonly record: DeviceRecord;
  readonly publicKey: Uint8Array;
}

export class Registry {
  private readonly keys = new Map<string, Uint8Array>();
  /** The stored bytes of an active device's record as last decoded, and what they decoded to. */
  private readonly decoded = new Map<string, { readonly bytes: Uint8Array; readonly active: ActiveDevice }>();

  constructor(
    private readonly store: Store,
    /** Refuses enrolments and revocations (DiskLowError, nothing written) while the disk is below its floor. */
    private readonly space?: FreeSpaceGuard,
  ) {}

  /**
   * Enrols a device (or re-enrols a revoked one). Re-enrolling an active device
   * with the same key is a no-op; with another key it is refused: rotate by
   * revoking first, so a key change is always a deliberate act.
   */
  async enroll(e: Enrolment, now = Date.now()): Promise<DeviceRecord> {
    // Already enrolled with this key (every start re-reads the config's list): nothing to check or write.
    const same = this.store.devices.get(e.id);
    if (same && same.revokedAt === undefined && same.publicKey === e.publicKey.toLowerCase()) return same;
    if (!isValidId(e.id))
      throw new RegistryError('registry/bad-id', `device id "${e.id}" must match [A-Za-z0-9][A-Za-z0-9._-]{0,63}`);
    const key = parsePublicKey(e.publicKey);
    if (!key.ok)
      throw new RegistryError('registry/bad-key', `device ${e.id}: ${key.error.message} (${key.error.code})`);
    const hex = Buffer.from(key.value).toString('hex');
    const existing = this.store.devices.get(e.id);
    if (existing && existing.revokedAt === undefined) {
      if (existing.publicKey === hex) return existing;
      throw new RegistryError('registry/exists', `device ${e.id} is enrolled with another key; revoke it first`);
    }
    const rec: DeviceRecord = {
      id: e.id,
      publicKey: hex,
      enrolledAt: now,
      ...(e.site !== undefined && { site: e.site }),
      ...(e.model !== undefined && { model: e.model }),
      ...(e.name !== undefined && { name: e.name }),
    };
    this.space?.require(`enrolling device ${e.id}`);
    await this.store.devices.put(e.id, rec);
    return rec;
  }

  /**
   * Enrols devices the config or a manifest lists. One refused by the free-space guard is left
   * out (its frames are refused as unknown, the safe side) and named in the log, so a gateway
   * still starts and serves on a low disk; any other error is thrown.
   */
  async enrollAll(list: readonly Enrolment[], log: Logger): Promise<void> {
    for (const d of list) {
      try {
        await this.enroll(d);
      } catch (err) {
        if (!(err instanceof DiskLowError)) throw err;
        log.error({ device: d.id, code: err.code, free: err.free, minFreeBytes: err.minFreeBytes }, err.message);
      }
    }
  }

  async revoke(id: string, now = Date.now()): Promise<DeviceRecord> {
    const existing = this.store.devices.get(id);
    if (!existing) throw new RegistryError('registry/unknown', `no device ${id}`);
    if (existing.revokedAt !== undefined) return existing;
    const rec: DeviceRecord = { ...existing, revokedAt: now };
    this.space?.require(`revoking device ${id}`);
    await this.store.devices.put(id, rec);
    return rec;
  }

  get(id: string): DeviceRecord | undefined {
    return this.store.devices.get(id);
  }

  /** The enrolled, unrevoked device and its key, or undefined. */
  active(id: string): ActiveDevice | undefined {
    // getBinaryFast's buffer is lmdb-js's own, reused by the next read (its byteLength is the whole
    // shared buffer's, so Buffer's equals and copies refuse it): compared byte by byte only; the
    // bytes kept are read again as a copy.
    const bytes = this.store.devices.getBinaryFast(id);
    const last = this.decoded.get(id);
    if (bytes && last && bytesEqual(last.bytes, bytes)) return last.active;
    const copy = bytes && this.store.devices.getBinary(id);
    const record = this.store.devices.get(id);
    if (!record || record.revokedAt !== undefined || !copy) {
      this.decoded.delete(id);
      return undefined;
    }
    let pub = this.keys.get(record.publicKey);
    if (!pub) {
      pub = fromHex(record.publicKey)!;
      // Records are checked at enrolment; re-check in case the store was edited by hand.
      if (!checkEd25519PublicKey(pub).ok) return undefined;
      this.keys.set(record.publicKey, pub);
    }
    const active = { record, publicKey: pub };
    this.decoded.set(id, { bytes: copy, active });
    return active;
  }

  list(): DeviceRecord[] {
    return [...this.store.devices.getRange()].map((e) => e.value);
  }

  activeCount(): number {
    return this.list().filter((d) => d.revokedAt === undefined).length;
  }

  static didKey(rec: DeviceRecord): string {
    return publicKeyToDidKey(fromHex(rec.publicKey)!);
  }
}
