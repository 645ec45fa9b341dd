/**
 * `gateway firmware …`: releases and rollouts. `add` and `rollout` hand their work to the
 * running gateway through <dataDir>/firmware-pending (firmware/inbox.ts), as do `pause`,
 * `resume` and `abort`, so the CLI never authors on the gateway's streams; `list` and
 * `status` read the log.
 */
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { encodeCanonical, toHex } from '../../protocols/index.js';
import { type ControlAction, firmwareBody } from '../../protocols/firmware-block.js';
import {
  encodeManifest,
  isFirmwareModel,
  isFirmwareVersion,
  MAX_IMAGE_BYTES,
} from '../../protocols/firmware-manifest.js';
import { publicKeyFromSeed, signEd25519 } from '../crypto/ed25519.js';
import { queueControl, queueRelease, queueRollout } from '../firmware/inbox.js';
import { FirmwareStore } from '../firmware/releases.js';
import { rolloutStatus } from '../firmware/rollout.js';
import { releaseRows, rolloutRow } from '../firmware/view.js';
import { parseOfferWindow } from '../firmware/window.js';
import { GatewayIdentity } from '../identity.js';
import { BlockLog } from '../log/block-log.js';
import { loadPolicySet } from '../policy/runtime.js';
import { globToRegExp } from '../policy/text.js';
import { Registry } from '../registry.js';
import { Store } from '../store/store.js';
import { siblingKeys } from '../sync/siblings.js';
import { CliError, commonOptions, parseWait, reportQueued, resolveConfig, UsageError } from './args.js';

export const firmwareHelp = `gateway firmware add IMAGE --version V --model M --release-key FILE [--min-version V] [--slot N] [--wait S]
  Signs a manifest for IMAGE (SHA-256, size, model, version, the minimum version it upgrades
  from, default 0.0.0; slot, default 1) with the release key (a seed file from \`gateway policy
  keygen\`; its did:key must be under \`releaseKeys\` in the policy file) and hands both to the
  running gateway, which logs them (synced to its siblings). --wait S waits until logged.
gateway firmware list [--json]
  The releases in the log: model, version, size, digest, release key, whether the image is whole.
gateway firmware rollout V --devices SELECTOR [--model M] [--canary N] [--steps 5%,25%,100%] [--halt-on-failure 10%] [--window HH:MM-HH:MM] [--id ID] [--wait S]
  Rolls release V out to the enrolled devices matching SELECTOR (comma-separated id globs),
  a canary first, then cumulative steps; halts once failures exceed the threshold.
  --window: offers only between these times (the gateway's local time; 22:00-05:00 crosses midnight).
gateway firmware pause ID [--wait S] | resume ID [--wait S] | abort ID [--wait S]
  Pause: nothing new is offered and the rollout stays at its stage (devices that took the offer
  finish). Resume: it goes on. Abort: nothing is offered or sent again. Logged as signed blocks,
  so siblings holding the rollout follow; an abort wins over any pause or resume.
gateway firmware status [ID] [--json]
  Each rollout's state (running, paused, halted, aborted, done), stage and every device's state
  (offered, downloading n %, verified, installing, confirmed, rolled-back, failed with reason).`;

export async function firmware(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'add') return add(rest);
  if (sub === 'list') return list(rest);
  if (sub === 'rollout') return rollout(rest);
  if (sub === 'status') return status(rest);
  if (sub === 'pause' || sub === 'resume' || sub === 'abort') return control(sub, rest);
  if (sub === '--help' || sub === '-h' || sub === 'help') {
    console.log(firmwareHelp);
    return 0;
  }
  throw new UsageError(`usage:\n${firmwareHelp}`);
}

function readSeed(file: string): Uint8Array {
  let text: string;
  try {
    text = readFileSync(file, 'utf8').trim();
  } catch (e) {
    throw new CliError(`cannot read release key ${file}: ${(e as Error).message}`);
  }
  if (!/^[0-9a-f]{64}$/i.test(text)) throw new CliError(`${file} must hold 64 hex digits (an Ed25519 seed)`);
  return Uint8Array.from(Buffer.from(text, 'hex'));
}

/** SHA-256 and size of a file, read in pieces. */
function digestOf(file: string): { digest: Uint8Array; size: number } {
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    const h = createHash('sha256');
    const buf = new Uint8Array(64 * 1024);
    for (let n = readSync(fd, buf); n > 0; n = readSync(fd, buf)) h.update(buf.subarray(0, n));
    return { digest: new Uint8Array(h.digest()), size };
  } finally {
    closeSync(fd);
  }
}

/** Reports a queued request (`seconds`: `--wait`, parsed before anything was queued). */
const waitFor = (file: string, seconds: number, what: string, dataDir: string): Promise<number> =>
  reportQueued(file, seconds, {
    queued: `${what} queued (${file}); the running gateway logs it within a second`,
    logged: `${what} logged`,
    dataDir,
  });

async function add(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      ...commonOptions,
      version: { type: 'string' },
      model: { type: 'string' },
      'release-key': { type: 'string' },
      'min-version': { type: 'string' },
      slot: { type: 'string' },
      wait: { type: 'string' },
    },
  });
  const [image] = positionals;
  if (positionals.length !== 1 || image === undefined) throw new UsageError('firmware add needs one IMAGE');
  const wait = parseWait(values.wait);
  const version = values.version;
  const model = values.model;
  const minVersion = values['min-version'] ?? '0.0.0';
  if (version === undefined || !isFirmwareVersion(version)) throw new UsageError('--version must be MAJOR.MINOR.PATCH');
  if (!isFirmwareVersion(minVersion)) throw new UsageError('--min-version must be MAJOR.MINOR.PATCH');
  if (model === undefined || !isFirmwareModel(model)) throw new UsageError('--model must be a model id');
  const slot = values.slot === undefined ? 1 : Number(values.slot);
  if (!Number.isInteger(slot) || slot < 0 || slot > 15) throw new UsageError('--slot must be 0..15');
  if (values['release-key'] === undefined) throw new UsageError('firmware add needs --release-key FILE');
  const cfg = resolveConfig(values);
  const set = loadPolicySet(cfg);
  const seed = readSeed(values['release-key']);
  const pub = publicKeyFromSeed(seed);
  const named = [...(set.releaseKeys ?? [])].find(([, k]) => toHex(k) === toHex(pub));
  if (!named) throw new CliError(`the release key is not named under releaseKeys in the policy file (${set.file})`);
  if (!existsSync(image)) throw new CliError(`no image ${image}`);
  const { digest, size } = digestOf(image);
  if (size === 0 || size > MAX_IMAGE_BYTES) throw new CliError(`image must be 1..${MAX_IMAGE_BYTES} bytes`);
  const manifest = encodeManifest({ model, version, digest, size, minVersion, slot, issued: Date.now() }, pub, (m) =>
    signEd25519(seed, m),
  );
  const dataDir = resolve(cfg.gateway.dataDir);
  const file = queueRelease(dataDir, manifest, image);
  return waitFor(
    file,
    wait,
    `firmware ${model} ${version} (${size} bytes, sha256 ${toHex(digest).slice(0, 16)}…, key ${named[0]})`,
    dataDir,
  );
}

/** The data directory's log, read only, with the firmware in it. */
function openFirmware(values: { config?: string | undefined; data?: string | undefined }) {
  const cfg = resolveConfig(values);
  const dataDir = resolve(cfg.gateway.dataDir);
  if (!existsSync(join(dataDir, 'outpost.lmdb')) || !existsSync(join(dataDir, 'identity.key')))
    throw new CliError(`no gateway store in ${dataDir} (start the gateway once)`);
  const set = loadPolicySet(cfg);
  const store = Store.open(dataDir);
  const identity = GatewayIdentity.loadOrCreate(cfg.gateway.id, dataDir);
  const log = new BlockLog(store, {
    publicKey: identity.publicKey,
    sign: identity.sign,
    knownAuthors: siblingKeys(cfg.sync),
  });
  return { cfg, dataDir, store, fw: new FirmwareStore(log, [...(set.releaseKeys ?? new Map()).values()]) };
}

async function list(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { ...commonOptions, json: { type: 'boolean' } } });
  const { store, fw } = openFirmware(values);
  try {
    const rows = releaseRows(fw);
    if (values.json) console.log(JSON.stringify({ releases: rows, untrusted: [...fw.untrusted.values()] }, null, 2));
    else {
      for (const r of rows)
        console.log(
          `${r.model} ${r.version}  ${r.size} bytes  sha256 ${r.digest.slice(0, 16)}…  from ${r.minVersion}  key ${r.key}${r.complete ? '' : '  (image incomplete: syncing)'}`,
        );
      if (rows.length === 0) console.log('no firmware releases');
      for (const u of fw.untrusted.values()) console.log(`untrusted release (not shown): ${u}`);
    }
    return 0;
  } finally {
    await store.close();
  }
}

const percentList = (text: string, flag: string): number[] =>
  text.split(',').map((p) => {
    const n = Number(p.trim().replace(/%$/, ''));
    if (!Number.isInteger(n) || n < 1 || n > 100) throw new UsageError(`${flag}: "${p}" is not a percent 1..100`);
    return n;
  });

async function rollout(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      ...commonOptions,
      devices: { type: 'string' },
      model: { type: 'string' },
      canary: { type: 'string' },
      steps: { type: 'string' },
      'halt-on-failure': { type: 'string' },
      window: { type: 'string' },
      id: { type: 'string' },
      wait: { type: 'string' },
    },
  });
  const [version] = positionals;
  if (version === undefined || !isFirmwareVersion(version)) throw new UsageError('firmware rollout needs a version V');
  if (values.devices === undefined) throw new UsageError('firmware rollout needs --devices SELECTOR');
  const canary = values.canary === undefined ? 0 : Number(values.canary);
  if (!Number.isInteger(canary) || canary < 0) throw new UsageError('--canary must be a count');
  const steps = percentList(values.steps ?? '100%', '--steps');
  if (steps.some((s, i) => i > 0 && s <= steps[i - 1]!) || steps.at(-1) !== 100)
    throw new UsageError('--steps must increase and end at 100%');
  const [halt] = percentList(values['halt-on-failure'] ?? '100%', '--halt-on-failure');
  const window = values.window === undefined ? undefined : parseOfferWindow(values.window);
  if (window && !window.ok) throw new UsageError(`--window: ${window.error.message}`);
  const wait = parseWait(values.wait);
  const { cfg, store, fw } = openFirmware(values);
  try {
    const release = fw.byVersion(version, values.model);
    if (!release) throw new CliError(`no release ${version}${values.model ? ` for ${values.model}` : ''} in the log`);
    const model = release.signed.manifest.model;
    const globs = values.devices.split(',').map((g) => globToRegExp(g.trim()));
    const devices = new Registry(store)
      .list()
      .filter((d) => d.revokedAt === undefined && globs.some((g) => g.test(d.id)))
      .filter((d) => d.model === undefined || d.model === model)
      .map((d) => d.id)
      .sort();
    if (devices.length === 0) throw new CliError(`no enrolled ${model} device matches ${values.devices}`);
    const id = values.id ?? `${version}-${randomBytes(3).toString('hex')}`;
    const body = firmwareBody({
      type: 'rollout',
      id,
      digest: release.signed.manifest.digest,
      devices,
      canary,
      steps,
      haltPercent: halt!,
      at: Date.now(),
      ...(window?.ok && { window: window.value }),
    });
    const dataDir = resolve(cfg.gateway.dataDir);
    const file = queueRollout(dataDir, encodeCanonical(body));
    return await waitFor(file, wait, `rollout ${id} of ${model} ${version} to ${devices.length} devices`, dataDir);
  } finally {
    await store.close();
  }
}

async function status(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { ...commonOptions, json: { type: 'boolean' } },
  });
  const { store, fw } = openFirmware(values);
  try {
    const ids = positionals.length > 0 ? positionals : [...fw.rollouts.keys()].sort();
    const out = ids.map((id) => {
      const row = rolloutRow(fw, id);
      if (!row) throw new CliError(`no rollout ${id}`);
      return row;
    });
    if (values.json) console.log(JSON.stringify(out, null, 2));
    else
      for (const r of out) {
        console.log(
          `${r.id}: ${r.model} ${r.version} ${r.state}, stage ${r.stage} of ${r.stages.length} (${r.stages.join(', ')} devices)${r.window ? `, offers ${r.window}` : ''}; ${Object.entries(
            r.counts,
          )
            .map(([k, v]) => `${v} ${k}`)
            .join(', ')}`,
        );
        for (const [d, p] of Object.entries(r.devices))
          console.log(
            `  ${d}  ${p.state}${p.state === 'downloading' ? ` ${p.percent} %` : ''}${p.reason ? ` (${p.reason})` : ''}`,
          );
      }
    return 0;
  } finally {
    await store.close();
  }
}

async function control(action: ControlAction, argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { ...commonOptions, wait: { type: 'string' } },
  });
  const [id] = positionals;
  if (positionals.length !== 1 || id === undefined) throw new UsageError(`firmware ${action} needs one rollout ID`);
  const wait = parseWait(values.wait);
  const { cfg, store, fw } = openFirmware(values);
  try {
    // The gateway checks again (a sibling's block may have come in since): this is for a clear error.
    const st = rolloutStatus(fw, id);
    if (!st) throw new CliError(`no rollout ${id} in the log`);
    if (st.aborted || st.done) throw new CliError(`rollout ${id} is ${st.state}`);
    const body = firmwareBody({ type: 'control', rollout: id, action, at: Date.now() });
    const dataDir = resolve(cfg.gateway.dataDir);
    const file = queueControl(dataDir, encodeCanonical(body));
    return await waitFor(file, wait, `${action} of rollout ${id}`, dataDir);
  } finally {
    await store.close();
  }
}
