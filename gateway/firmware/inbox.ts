/**
 * How `gateway firmware add`, `rollout`, `pause`, `resume` and `abort` hand their work to the
 * running gateway, through a pending folder (gateway/store/pending-folder.ts) as `policy
 * grant` hands its ops: the CLI queues `<dataDir>/firmware-pending/<name>.image` and then
 * `<name>.manifest` (or a `<name>.rollout`, or a `<name>.control`); the gateway checks the
 * manifest under the policy file's release keys, the image's size and SHA-256 (read twice in
 * IMAGE_BLOCK_BYTES pieces, never whole), logs the image blocks and then the release block,
 * and deletes both files once durable; a rollout or control is checked against the log. A refused
 * request is set aside as `<name>.rejected` (its image `<name>.image.rejected`) with the
 * reason in `<name>.reason`.
 */
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, openSync, readFileSync, readSync, unlinkSync } from 'node:fs';
import { basename, join } from 'node:path';
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
import { PendingFolder, queuePending } from '../store/pending-folder.js';
import type { FirmwareStore } from './releases.js';
import { rolloutStatus } from './rollout.js';

const FIRMWARE_PENDING_DIR = 'firmware-pending';
/** Image blocks authored per commit. */
const BLOCKS_PER_COMMIT = 16;

/** CLI side: queues a release; returns the manifest file, which disappears once the gateway logged it. */
export function queueRelease(dataDir: string, manifest: Uint8Array, imageFile: string): string {
  // The image first: a drain looks for manifests, so it never sees a release without its image.
  const image = queuePending(dataDir, FIRMWARE_PENDING_DIR, '.image', readFileSync(imageFile));
  return queuePending(dataDir, FIRMWARE_PENDING_DIR, '.manifest', manifest, { base: basename(image, '.image') });
}

/** CLI side: queues a rollout (its block body, canonical CBOR); returns the file. */
export function queueRollout(dataDir: string, body: Uint8Array): string {
  return queuePending(dataDir, FIRMWARE_PENDING_DIR, '.rollout', body);
}

/** CLI side: queues a pause, resume or abort of a rollout (its block body, canonical CBOR); returns the file. */
export function queueControl(dataDir: string, body: Uint8Array): string {
  return queuePending(dataDir, FIRMWARE_PENDING_DIR, '.control', body);
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

export class FirmwareInbox extends PendingFolder {
  constructor(private readonly d: FirmwareInboxDeps) {
    super(join(d.dataDir, FIRMWARE_PENDING_DIR), {
      exts: ['.manifest', '.rollout', '.control'],
      what: 'firmware request',
      logger: d.logger,
    });
  }

  protected async handle(names: string[]): Promise<number> {
    let logged = 0;
    for (const n of names) {
      try {
        const done = n.endsWith('.rollout')
          ? await this.rollout(n)
          : n.endsWith('.control')
            ? await this.control(n)
            : await this.release(n.slice(0, -'.manifest'.length));
        if (done) logged++;
      } catch (err) {
        this.d.logger.error({ file: n, err }, 'cannot process a pending firmware request');
      }
    }
    return logged;
  }

  private refuse(name: string, reason: string, exts = ['.manifest', '.image']): false {
    this.reject(name, reason, exts);
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

  /** A queued body (`.rollout`, `.control`), decoded; or the refusal. */
  private body(n: string, ext: string): { b: FirmwareBody; refuse: (reason: string) => false } | false {
    const raw = decodeCbor(readFileSync(join(this.dir, n)), {
      maxBytes: 1024 * 1024,
      maxDepth: 3,
      maxItems: 20_000,
      maxContainerLength: 10_000,
    });
    const d = raw.ok ? decodeFirmwareBody(raw.value) : raw;
    const refuse = (reason: string): false => this.refuse(n.slice(0, -ext.length), `${ext.slice(1)}: ${reason}`, [ext]);
    if (!d.ok) return refuse(`${d.error.code}: ${d.error.message}`);
    return { b: d.value, refuse };
  }

  private async control(n: string): Promise<boolean> {
    const got = this.body(n, '.control');
    if (!got) return false;
    const { b, refuse } = got;
    if (b.type !== 'control') return refuse('not a control');
    const st = rolloutStatus(this.d.store, b.rollout);
    if (!st) return refuse(`no rollout ${b.rollout} is held`);
    // Refused when it would change nothing, so the operator learns the rollout's state.
    if (st.aborted) return refuse(`rollout ${b.rollout} is aborted`);
    if (st.done || (b.action !== 'abort' && st.halted)) return refuse(`rollout ${b.rollout} is ${st.state}`);
    if (b.action === 'pause' && st.paused) return refuse(`rollout ${b.rollout} is paused already`);
    if (b.action === 'resume' && !st.paused) return refuse(`rollout ${b.rollout} is not paused`);
    await this.author([b]);
    unlinkSync(join(this.dir, n));
    this.d.logger.info({ rollout: b.rollout, action: b.action }, `firmware rollout ${b.rollout}: ${b.action}`);
    return true;
  }

  private async rollout(n: string): Promise<boolean> {
    const file = join(this.dir, n);
    const got = this.body(n, '.rollout');
    if (!got) return false;
    const { b, refuse } = got;
    if (b.type !== 'rollout') return refuse('not a rollout');
    if (!this.d.store.releases.has(toHex(b.digest))) return refuse('no release with that image digest is held');
    if (this.d.store.rollouts.has(b.id)) return refuse(`rollout ${b.id} exists already`);
    await this.author([b]);
    unlinkSync(file);
    this.d.logger.info({ rollout: b.id, devices: b.devices.length, steps: b.steps }, `firmware rollout ${b.id} logged`);
    return true;
  }

  private async release(name: string): Promise<boolean> {
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
      for (let i = 0; i * IMAGE_BLOCK_BYTES < size; i++) h.update(readPiece(fd, size, i));
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
