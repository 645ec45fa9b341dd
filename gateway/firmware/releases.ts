/**
 * Firmware held in the log: releases (signed manifests), their image blocks and rollouts (with
 * their progress and controls), whichever gateway logged them. Built once from the log's
 * `firmware` blocks and kept up to date from every durable block (own and synced). Images are never held whole: `read`
 * takes a byte range out of the image blocks, with a few decoded blocks cached (a rollout
 * sends the same image to many devices).
 */
import { type Block, type CborValue, decodeSignedBlock, fromHex, toHex } from '../../protocols/index.js';
import { decodeFirmwareBody, type FirmwareBody, IMAGE_BLOCK_BYTES } from '../../protocols/firmware-block.js';
import { type SignedManifest, verifyManifest } from '../../protocols/firmware-manifest.js';
import { verifyEd25519 } from '../crypto/ed25519.js';
import type { BlockLog } from '../log/block-log.js';

export interface Release {
  readonly digest: string;
  readonly signed: SignedManifest;
  readonly keyName: string;
  /** Author (key hex) of the release block. */
  readonly author: string;
  readonly blocks: number;
  /** Block hash of each image block held, by index. */
  readonly imageBlocks: Map<number, string>;
  /** A block's lamport clock, for ordering. */
  readonly lamport: number;
}

export type RolloutBody = Extract<FirmwareBody, { type: 'rollout' }>;
export type DeviceBody = Extract<FirmwareBody, { type: 'device' }>;
export type StepBody = Extract<FirmwareBody, { type: 'step' }>;
export type ControlBody = Extract<FirmwareBody, { type: 'control' }>;
export type DevicesBody = Extract<FirmwareBody, { type: 'devices' }>;

/** A firmware body with where it came from. */
export interface Logged<T> {
  readonly body: T;
  readonly author: string;
  readonly lamport: number;
  readonly hash: string;
  /** Its place among the entries of one `devices` block (they happened in that order); 0 otherwise. */
  readonly index?: number;
}

const CACHE_BLOCKS = 8;

/** Whether `a` comes after `b` in the log's order (lamport, hash, then index in the block): the same on every gateway. */
export const laterThan = (a: Logged<unknown>, b: Logged<unknown>): boolean =>
  a.lamport > b.lamport ||
  (a.lamport === b.lamport && (a.hash > b.hash || (a.hash === b.hash && (a.index ?? 0) > (b.index ?? 0))));

/** A `devices` block's entries as the device states they are, each with its place in the block. */
function devicesOf(l: Logged<DevicesBody>): Logged<DeviceBody>[] {
  return l.body.entries.map((e, index) => ({
    body: { type: 'device', rollout: l.body.rollout, ...e },
    author: l.author,
    lamport: l.lamport,
    hash: l.hash,
    index,
  }));
}

export class FirmwareStore {
  readonly releases = new Map<string, Release>();
  /** Image blocks seen before their release, by digest. */
  private readonly orphans = new Map<string, Map<number, string>>();
  readonly rollouts = new Map<string, Logged<RolloutBody>>();
  /**
   * Each rollout's latest state (laterThan) per device: what rolloutStatus folds, kept as blocks
   * come. Only the latest: the states before it stay in the log (`deviceHistory`), not in memory.
   */
  private readonly latest = new Map<string, Map<string, Logged<DeviceBody>>>();
  readonly steps: Logged<StepBody>[] = [];
  /** Pause, resume and abort of rollouts (rollout.ts folds them). */
  readonly controls: Logged<ControlBody>[] = [];
  /** Releases whose manifest no release key of this gateway's policy file verifies. */
  readonly untrusted = new Map<string, string>();
  private readonly cache = new Map<string, Uint8Array>();
  private readonly listeners = new Set<(b: Logged<FirmwareBody>) => void>();
  private unsubscribe?: () => void;

  constructor(
    private readonly log: BlockLog,
    private readonly releaseKeys: readonly Uint8Array[],
  ) {
    for (const [h, block] of this.logged()) this.take(h, block);
  }

  /** The firmware blocks the log holds, by hash. */
  private *logged(): Generator<[string, Block]> {
    for (const h of this.log.hashesOfKind('firmware')) {
      const env = this.log.getEnvelope(h);
      const sb = env && decodeSignedBlock(env);
      if (sb?.ok) yield [h, sb.value.block];
    }
  }

  /** Follows durable blocks from now on (the running gateway). */
  follow(): this {
    this.unsubscribe = this.log.onDurableBlock((sb) => {
      if (sb.block.kind === 'firmware') this.take(toHex(sb.hash), sb.block);
    });
    return this;
  }

  close(): void {
    this.unsubscribe?.();
  }

  /** A rollout's latest state of each device that reported (by lamport, then hash). */
  latestStates(rollout: string): ReadonlyMap<string, Logged<DeviceBody>> | undefined {
    return this.latest.get(rollout);
  }

  /**
   * Every device state the log holds of a rollout, in the log's order (laterThan), read from the
   * log when asked: `device` blocks and each entry of `devices` blocks.
   */
  deviceHistory(rollout: string): Logged<DeviceBody>[] {
    const out: Logged<DeviceBody>[] = [];
    for (const [h, block] of this.logged()) {
      const d = decodeFirmwareBody(block.body as CborValue);
      if (!d.ok || (d.value.type !== 'device' && d.value.type !== 'devices')) continue;
      if (d.value.rollout !== rollout) continue;
      const l = { body: d.value, author: toHex(block.author), lamport: block.lamport, hash: h };
      if (d.value.type === 'device') out.push(l as Logged<DeviceBody>);
      else out.push(...devicesOf(l as Logged<DevicesBody>));
    }
    return out.sort((a, b) => (laterThan(a, b) ? 1 : laterThan(b, a) ? -1 : 0));
  }

  /** Called with each firmware body taken in after construction. */
  onBody(fn: (b: Logged<FirmwareBody>) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private take(hash: string, block: Block): void {
    const d = decodeFirmwareBody(block.body as CborValue);
    if (!d.ok) return;
    const b = d.value;
    const author = toHex(block.author);
    const logged = { body: b, author, lamport: block.lamport, hash };
    switch (b.type) {
      case 'release': {
        const v = verifyManifest(b.manifest, this.releaseKeys, verifyEd25519);
        if (!v.ok) {
          this.untrusted.set(hash, `${v.error.code}: ${v.error.message}`);
          break;
        }
        const digest = toHex(v.value.manifest.digest);
        const held = this.releases.get(digest);
        // Two gateways may log the same release: the earliest (lamport, hash) is the one.
        if (held && (held.lamport < block.lamport || (held.lamport === block.lamport && held.author < author))) break;
        const imageBlocks = held?.imageBlocks ?? this.orphans.get(digest) ?? new Map<number, string>();
        this.orphans.delete(digest);
        this.releases.set(digest, {
          digest,
          signed: v.value,
          keyName: b.keyName,
          author,
          blocks: b.blocks,
          imageBlocks,
          lamport: block.lamport,
        });
        break;
      }
      case 'image': {
        const digest = toHex(b.digest);
        const r = this.releases.get(digest);
        const map = r?.imageBlocks ?? this.orphans.get(digest) ?? new Map<number, string>();
        if (!r) this.orphans.set(digest, map);
        if (!map.has(b.index)) map.set(b.index, hash);
        break;
      }
      case 'rollout': {
        const held = this.rollouts.get(b.id);
        if (!held || held.lamport > block.lamport) this.rollouts.set(b.id, logged as Logged<RolloutBody>);
        break;
      }
      case 'device':
        this.takeState(logged as Logged<DeviceBody>);
        break;
      case 'devices':
        for (const l of devicesOf(logged as Logged<DevicesBody>)) this.takeState(l);
        break;
      case 'step':
        this.steps.push(logged as Logged<StepBody>);
        break;
      case 'control':
        this.controls.push(logged as Logged<ControlBody>);
        break;
    }
    for (const fn of this.listeners) fn(logged);
  }

  private takeState(l: Logged<DeviceBody>): void {
    let states = this.latest.get(l.body.rollout);
    if (!states) this.latest.set(l.body.rollout, (states = new Map()));
    const held = states.get(l.body.device);
    if (!held || laterThan(l, held)) states.set(l.body.device, l);
  }

  /** Whether every image block of the release is held (a sibling may still be syncing it). */
  complete(r: Release): boolean {
    return r.imageBlocks.size >= r.blocks;
  }

  /** The release of a version for a model (the earliest logged if several). */
  byVersion(version: string, model?: string): Release | undefined {
    return [...this.releases.values()]
      .filter(
        (r) => r.signed.manifest.version === version && (model === undefined || r.signed.manifest.model === model),
      )
      .sort((a, b) => a.lamport - b.lamport)[0];
  }

  /**
   * Bytes [offset, offset + length) of a release's image (shorter at its end); undefined if a
   * block is missing. A range inside one block is a view of the cached block: read, not kept.
   */
  read(r: Release, offset: number, length: number): Uint8Array | undefined {
    const end = Math.min(offset + length, r.signed.manifest.size);
    if (offset >= end) return new Uint8Array(0);
    const first = Math.floor(offset / IMAGE_BLOCK_BYTES);
    if (Math.floor((end - 1) / IMAGE_BLOCK_BYTES) === first) {
      // Inside one block (chunks that divide 64 KiB always are): a view of the cached block, no copy.
      const data = this.imageBlock(r, first);
      const from = offset - first * IMAGE_BLOCK_BYTES;
      return data && data.length >= end - first * IMAGE_BLOCK_BYTES
        ? data.subarray(from, end - first * IMAGE_BLOCK_BYTES)
        : undefined;
    }
    const out = new Uint8Array(end - offset);
    let at = offset;
    while (at < end) {
      const index = Math.floor(at / IMAGE_BLOCK_BYTES);
      const data = this.imageBlock(r, index);
      if (!data) return undefined;
      const from = at - index * IMAGE_BLOCK_BYTES;
      const n = Math.min(data.length - from, end - at);
      if (n <= 0) return undefined;
      out.set(data.subarray(from, from + n), at - offset);
      at += n;
    }
    return out;
  }

  private imageBlock(r: Release, index: number): Uint8Array | undefined {
    const hash = r.imageBlocks.get(index);
    if (hash === undefined) return undefined;
    const cached = this.cache.get(hash);
    if (cached) {
      this.cache.delete(hash);
      this.cache.set(hash, cached); // most recently used last
      return cached;
    }
    const env = this.log.getEnvelope(hash);
    // Checked against the hash it is stored under (the log took it in canonical), not re-encoded.
    const sb = env && decodeSignedBlock(env, fromHex(hash));
    if (!sb?.ok) return undefined;
    const d = decodeFirmwareBody(sb.value.block.body as CborValue);
    if (!d.ok || d.value.type !== 'image') return undefined;
    this.cache.set(hash, d.value.data);
    if (this.cache.size > CACHE_BLOCKS) this.cache.delete(this.cache.keys().next().value!);
    return d.value.data;
  }
}
