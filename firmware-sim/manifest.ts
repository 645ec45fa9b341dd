/**
 * Fleet manifest: the device identities a simulated fleet runs with, in one
 * JSON file. It holds secret seeds, so it is written 0600; `publicView()` is
 * the part a gateway needs to enrol the fleet. Validation never throws on bad
 * input shape and names the offending field, e.g. `devices[3].publicKey`.
 */
import { chmodSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { bytesEqual, isValidId, parsePublicKey } from '../protocols/index.js';
import { generateDeviceKeys, publicKeyFromSeed, seedFromHex, seedToHex } from './crypto.js';
import { type DeviceModelName, isDeviceModel, MODEL_NAMES } from './sensors.js';

const MANIFEST_VERSION = 1;
export const MAX_MANIFEST_DEVICES = 100_000;

export interface ManifestDevice {
  readonly id: string;
  readonly model: DeviceModelName;
  readonly site: string;
  /** did:key of the Ed25519 public key. */
  readonly publicKey: string;
  /** The 32-byte RFC 8032 seed as 64 hex digits. */
  readonly secretKey: string;
}

export interface FleetManifest {
  readonly version: 1;
  readonly devices: readonly ManifestDevice[];
}

export type PublicManifestDevice = Omit<ManifestDevice, 'secretKey'>;
export interface PublicManifest {
  readonly version: 1;
  readonly devices: readonly PublicManifestDevice[];
}

/** A manifest problem; `field` is a path such as `devices[2].id`. */
export class ManifestError extends Error {
  constructor(
    readonly field: string,
    readonly detail: string,
  ) {
    super(`${field}: ${detail}`);
    this.name = 'ManifestError';
  }
}

export type ManifestResult = { ok: true; value: FleetManifest } | { ok: false; error: ManifestError };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const own = (o: Record<string, unknown>, k: string): unknown => (Object.hasOwn(o, k) ? o[k] : undefined);

/** Checks a parsed JSON value; never throws. */
export function validateManifest(input: unknown, opts: { checkKeys?: boolean } = {}): ManifestResult {
  const bad = (field: string, message: string): ManifestResult => ({
    ok: false,
    error: new ManifestError(field, message),
  });
  if (!isObject(input)) return bad('manifest', 'must be a JSON object');
  if (own(input, 'version') !== MANIFEST_VERSION) return bad('version', `must be ${MANIFEST_VERSION}`);
  const list = own(input, 'devices');
  if (!Array.isArray(list)) return bad('devices', 'must be an array');
  if (list.length > MAX_MANIFEST_DEVICES) return bad('devices', `at most ${MAX_MANIFEST_DEVICES} devices`);
  const seen = new Set<string>();
  const devices: ManifestDevice[] = [];
  for (let i = 0; i < list.length; i++) {
    const at = `devices[${i}]`;
    const d: unknown = list[i];
    if (!isObject(d)) return bad(at, 'must be an object');
    const id = own(d, 'id');
    if (typeof id !== 'string' || !isValidId(id))
      return bad(`${at}.id`, 'must be 1..64 of [A-Za-z0-9._-], starting with a letter or digit');
    if (seen.has(id)) return bad(`${at}.id`, `duplicate id "${id}"`);
    seen.add(id);
    const model = own(d, 'model');
    if (!isDeviceModel(model)) return bad(`${at}.model`, `must be one of ${MODEL_NAMES.join(', ')}`);
    const site = own(d, 'site');
    if (typeof site !== 'string' || !isValidId(site))
      return bad(`${at}.site`, 'must be 1..64 of [A-Za-z0-9._-], starting with a letter or digit');
    const publicKey = own(d, 'publicKey');
    if (typeof publicKey !== 'string' || !publicKey.startsWith('did:key:'))
      return bad(`${at}.publicKey`, 'must be a did:key string');
    const pub = parsePublicKey(publicKey);
    if (!pub.ok) return bad(`${at}.publicKey`, pub.error.message);
    const secretKey = own(d, 'secretKey');
    const seed = typeof secretKey === 'string' ? seedFromHex(secretKey) : undefined;
    if (typeof secretKey !== 'string' || !seed)
      return bad(`${at}.secretKey`, 'must be 64 hex digits (a 32-byte Ed25519 seed)');
    if ((opts.checkKeys ?? true) && !bytesEqual(publicKeyFromSeed(seed), pub.value)) {
      return bad(`${at}.publicKey`, 'does not match secretKey');
    }
    devices.push({ id, model, site, publicKey, secretKey: secretKey.toLowerCase() });
  }
  return { ok: true, value: { version: MANIFEST_VERSION, devices } };
}

/** Parses manifest JSON text; throws ManifestError. */
export function parseManifest(text: string): FleetManifest {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ManifestError('manifest', `not valid JSON (${(e as Error).message})`);
  }
  const r = validateManifest(json);
  if (!r.ok) throw r.error;
  return r.value;
}

export function readManifest(path: string): FleetManifest {
  try {
    return parseManifest(readFileSync(path, 'utf8'));
  } catch (e) {
    if (e instanceof ManifestError) throw new ManifestError(e.field, `${e.detail} (in ${path})`);
    throw e;
  }
}

export const formatManifest = (m: FleetManifest | PublicManifest): string => JSON.stringify(m, null, 2) + '\n';

/** Writes atomically with mode 0600 (the file holds secret keys). */
export function writeManifest(path: string, m: FleetManifest): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, formatManifest(m), { mode: 0o600 });
  chmodSync(tmp, 0o600); // in case a stale temp file existed with wider permissions
  renameSync(tmp, path);
}

/** The manifest without secrets: what a gateway enrols. */
export function publicView(m: FleetManifest): PublicManifest {
  return {
    version: m.version,
    devices: m.devices.map(({ id, model, site, publicKey }) => ({ id, model, site, publicKey })),
  };
}

export interface GenerateOptions {
  readonly devices: number;
  /** Id prefix; ids are `{prefix}-0001`, … */
  readonly prefix?: string;
  readonly site?: string;
  /** One model for all, or a list cycled through. */
  readonly model?: DeviceModelName | readonly DeviceModelName[];
  /** First index (default 1). */
  readonly start?: number;
}

/** A manifest of fresh random identities. */
export function generateManifest(opts: GenerateOptions): FleetManifest {
  const prefix = opts.prefix ?? 'sim';
  const site = opts.site ?? 'site-1';
  const models =
    opts.model === undefined ? ['env-1' as const] : typeof opts.model === 'string' ? [opts.model] : opts.model;
  if (!Number.isInteger(opts.devices) || opts.devices < 0 || opts.devices > MAX_MANIFEST_DEVICES) {
    throw new RangeError(`devices must be an integer 0..${MAX_MANIFEST_DEVICES}`);
  }
  if (models.length === 0 || !models.every(isDeviceModel))
    throw new RangeError(`model must be one of ${MODEL_NAMES.join(', ')}`);
  if (!isValidId(site)) throw new RangeError(`site "${site}" is not a valid id`);
  const width = Math.max(4, String((opts.start ?? 1) + opts.devices - 1).length);
  const devices: ManifestDevice[] = [];
  for (let i = 0; i < opts.devices; i++) {
    const id = `${prefix}-${String((opts.start ?? 1) + i).padStart(width, '0')}`;
    if (!isValidId(id)) throw new RangeError(`prefix "${prefix}" gives the invalid id "${id}"`);
    const keys = generateDeviceKeys();
    devices.push({
      id,
      model: models[i % models.length]!,
      site,
      publicKey: keys.didKey,
      secretKey: seedToHex(keys.seed),
    });
  }
  return { version: MANIFEST_VERSION, devices };
}

/** The seed of a validated manifest entry. */
export function manifestSeed(d: ManifestDevice): Uint8Array {
  const seed = seedFromHex(d.secretKey);
  if (!seed) throw new ManifestError('secretKey', `device ${d.id}: must be 64 hex digits`);
  return seed;
}
