/**
 * How `gateway firmware add` hands a release to the running gateway (as `policy grant` hands
 * its ops, gateway/policy/inbox.ts): the CLI writes `<dataDir>/firmware-pending/<name>.image`
 * and then `<name>.manifest` (each whole, temp name then rename); the gateway drains the
 * folder every second: checks the manifest under the policy file's release keys, the image's
 * size and SHA-256 (read twice in IMAGE_BLOCK_BYTES pieces, never whole), logs the image
 * blocks and then the release block, and deletes both files once durable. A refused release
 * is renamed `*.rejected` with `<name>.reason` beside it.
 */
import { createHash } from 'node:crypto';
import {
  closeSync,
  fstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { decodeCbor, toHex } from '../../protocols/index.js';
import {
  decodeFirmwareBody,
  type FirmwareBody,
  firmwareBody,
  IMAGE_BLOCK_BYTES,
} from '../../protocols/firmware-block.js';
import { releaseKeyId, verifyManifest } from '../../protocols/firmware-manifest.js';
import { verifyEd25519 } from '../crypto/ed25519.js';
import type { BlockLog } from '../log/block-log.js';
import type { Logger } from '../logger.js';
import { writeFileWhole } from '../store/whole-file.js';
import type { FirmwareStore } from './releases.js';

const FIRMWARE_PENDING_DIR = 'firmware-pending';
/** Image blocks authored per commit. */
const BLOCKS_PER_COMMIT = 16;

/** CLI side: queues a release; returns the manifest file, which disappears once the gateway logged it. */
export function queueRelease(dataDir: string, manifest: Uint8Array, imageFile: string): string {
  const dir = join(dataDir, FIRMWARE_PENDING_DIR);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const name = `${String(Date.now()).padStart(15, '0')}-${randomBytes(6).toString('hex')}`;
  writeFileWhole(join(dir, `${name}.image`), readFileSync(imageFile), { mode: 0o600, exclusive: true });
  const file = join(dir, `${name}.manifest`);
  writeFileWhole(file, manifest, { mode: 0o600, exclusive: true });
  return file;
}

/** Piece `index` (IMAGE_BLOCK_BYTES, the last shorter) of the image file. */
function readPiece(fd: number, size: number, index: number): Uint8Array {
  const off = index * IMAGE_BLOCK_BYTES;
  const out = new Uint8Array(Math.min(IMAGE_BLOCK_BYTES, size - off));
  for (let got = 0; got < out.length; ) {
    const r = readSync(fd, out, got, out.length - got, off + got);
    if (r === 0) throw new Error('image file shrank while being read');
    got += r;
  }
  return out;
}

/** CLI side: queues a rollout (its block body, canonical CBOR); returns the file. */
export function queueRollout(dataDir: string, body: Uint8Array): string {
  const dir = join(dataDir, FIRMWARE_PENDING_DIR);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, `${String(Date.now()).padStart(15, '0')}-${randomBytes(6).toString('hex')}.rollout`);
  writeFileWhole(file, body, { mode: 0o600, exclusive: true });
  return file;
}

/** Calls `fn` with each IMAGE_BLOCK_BYTES piece of the file (the last shorter). */
function eachPiece(fd: number, size: number, fn: (piece: Uint8Array, index: number) => void): void {
  const buf = new Uint8Array(IMAGE_BLOCK_BYTES);
  for (let off = 0, i = 0; off < size; off += IMAGE_BLOCK_BYTES, i++) {
    const n = Math.min(IMAGE_BLOCK_BYTES, size - off);
    let got = 0;
    while (got < n) {
      const r = readSync(fd, buf, got, n - got, off + got);
      if (r === 0) throw new Error('image file shrank while being read');
      got += r;
    }
    fn(buf.subarray(0, n), i);
  }
}

export interface FirmwareInboxDeps {
  readonly dataDir: string;
  readonly log: BlockLog;
  readonly store: FirmwareStore;
  /** Release keys of the policy file, by name. */
  readonly releaseKeys: ReadonlyMap<string, Uint8Array>;
  /** The stream (policy) firmware blocks go on. */
  readonly policy: string;
  /** Runs block authoring where the gateway authors (the ingest commit loop). */
  readonly inCommit: (author: () => void) => void;
  readonly logger: Logger;
}

export class FirmwareInbox {
  private timer?: NodeJS.Timeout;
  private draining = false;
  private readonly dir: string;

  constructor(private readonly d: FirmwareInboxDeps) {
    this.dir = join(d.dataDir, FIRMWARE_PENDING_DIR);
  }

  start(intervalMs = 1000): this {
    const run = (): void =>
      void this.drain().catch((err: unknown) => this.d.logger.error({ err }, 'firmware inbox: drain failed; retried'));
    run();
    this.timer = setInterval(run, intervalMs);
    this.timer.unref();
    return this;
  }

  stop(): void {
    clearInterval(this.timer);
  }

  async drain(): Promise<number> {
    if (this.draining) return 0;
    this.draining = true;
    let logged = 0;
    try {
      let names: string[];
      try {
        names = readdirSync(this.dir)
          .filter((n) => n.endsWith('.manifest') || n.endsWith('.rollout'))
          .sort();
      } catch {
        return 0;
      }
      for (const n of names) {
        try {
          if (n.endsWith('.rollout') ? await this.rollout(n) : await this.handle(n.slice(0, -'.manifest'.length)))
            logged++;
        } catch (err) {
          this.d.logger.error({ file: n, err }, 'cannot process a pending firmware release');
        }
      }
    } finally {
      this.draining = false;
    }
    return logged;
  }

  private refuse(name: string, reason: string): false {
    this.d.logger.error({ release: name, reason }, `firmware release refused: ${reason}`);
    writeFileSync(join(this.dir, `${name}.reason`), `${reason}\n`);
    for (const ext of ['.manifest', '.image'])
      try {
        renameSync(join(this.dir, name + ext), join(this.dir, `${name}${ext}.rejected`));
      } catch {
        // already gone
      }
    return false;
  }

  /** Authors the bodies in the commit loop and resolves once they are durable. */
  private async author(bodies: FirmwareBody[]): Promise<void> {
    await new Promise<void>((resolve, reject) =>
      this.d.inCommit(() => {
        try {
          for (const body of bodies)
            this.d.log.appendBlock({ kind: 'firmware', body: firmwareBody(body) }, this.d.policy);
          resolve();
        } catch (e) {
          reject(e as Error);
        }
      }),
    );
    await this.d.log.durable();
  }

  private async rollout(n: string): Promise<boolean> {
    const file = join(this.dir, n);
    const name = n.slice(0, -'.rollout'.length);
    const raw = decodeCbor(readFileSync(file), {
      maxBytes: 1024 * 1024,
      maxDepth: 3,
      maxItems: 20_000,
      maxContainerLength: 10_000,
    });
    const d = raw.ok ? decodeFirmwareBody(raw.value) : raw;
    const refuse = (reason: string): false => {
      writeFileSync(join(this.dir, `${name}.reason`), `${reason}\n`);
      renameSync(file, `${file}.rejected`);
      this.d.logger.error({ rollout: name, reason }, `firmware rollout refused: ${reason}`);
      return false;
    };
    if (!d.ok) return refuse(`${d.error.code}: ${d.error.message}`);
    const b = d.value;
    if (b.type !== 'rollout') return refuse('not a rollout');
    if (!this.d.store.releases.has(toHex(b.digest))) return refuse('no release with that image digest is held');
    if (this.d.store.rollouts.has(b.id)) return refuse(`rollout ${b.id} exists already`);
    await this.author([b]);
    unlinkSync(file);
    this.d.logger.info({ rollout: b.id, devices: b.devices.length, steps: b.steps }, `firmware rollout ${b.id} logged`);
    return true;
  }

  private async handle(name: string): Promise<boolean> {
    const manifestFile = join(this.dir, `${name}.manifest`);
    const imageFile = join(this.dir, `${name}.image`);
    const v = verifyManifest(readFileSync(manifestFile), [...this.d.releaseKeys.values()], verifyEd25519);
    if (!v.ok) return this.refuse(name, `${v.error.code}: ${v.error.message}`);
    const m = v.value.manifest;
    const keyName = [...this.d.releaseKeys].find(([, k]) => toHex(v.value.kid) === toHex(releaseKeyId(k)))?.[0] ?? '?';
    const digest = toHex(m.digest);
    if (this.d.store.releases.has(digest))
      return this.refuse(name, `the image ${digest.slice(0, 16)}… is released already`);
    const fd = openSync(imageFile, 'r');
    try {
      const size = fstatSync(fd).size;
      if (size !== m.size) return this.refuse(name, `image is ${size} bytes, the manifest says ${m.size}`);
      const h = createHash('sha256');
      eachPiece(fd, size, (p) => h.update(p));
      if (h.digest('hex') !== digest) return this.refuse(name, 'image SHA-256 does not match the manifest digest');
      // Image blocks first, the release last: whoever holds the release holds the image before it in the chain.
      const blocks = Math.ceil(size / IMAGE_BLOCK_BYTES);
      for (let first = 0; first < blocks; first += BLOCKS_PER_COMMIT) {
        const batch: [Uint8Array, number][] = [];
        for (let i = first; i < Math.min(blocks, first + BLOCKS_PER_COMMIT); i++)
          batch.push([readPiece(fd, size, i), i]);
        await this.author(batch.map(([data, index]) => ({ type: 'image', digest: m.digest, index, data })));
      }
      await this.author([{ type: 'release', manifest: v.value.bytes, keyName, blocks }]);
    } finally {
      closeSync(fd);
    }
    unlinkSync(imageFile);
    unlinkSync(manifestFile);
    this.d.logger.info(
      { model: m.model, version: m.version, digest, size: m.size, key: keyName },
      `firmware ${m.model} ${m.version} logged (${m.size} bytes)`,
    );
    return true;
  }
}
