/**
 * What an updatable device keeps in flash, as files in its own directory: `slot0.bin` (the
 * image it runs), `slot1.bin` (the download slot) and `update.json` (the update state: what
 * runs, the pending download and its offset, the trial boot). The state is written to a temp
 * file, flushed and renamed, after the slot data it vouches for is flushed (`save` flushes the
 * slot's pending writes first): so after a power loss at any byte the offset never claims
 * bytes the slot does not hold. Slot writes are not flushed one by one: like an MCU that
 * programs flash pages as chunks arrive and commits its offset now and then, the device
 * (update.ts) saves when it reports, and a power loss loses at most the bytes since.
 *
 * `FlashSync` says what a power loss is: `fsync` (the default) flushes the slot and then the
 * state to the host's disk at every save (two fsyncs), so even a crash of the host loses
 * nothing saved; `none` makes the same writes in the same order without flushing: the
 * simulated device's power loss is its process dying (SIGKILL at any byte, as
 * test/e2e/firmware-power-loss.test.ts does), which keeps every write that returned, as an
 * MCU's programmed flash does, and the temp-file rename keeps the state whole. A crash of
 * the host itself is not modelled then. The benches use `none`: a real device's flash write
 * does not wait for a host disk's fsync (bench/README.md, "Firmware transfer and rollouts").
 */
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';

export type FlashSync = 'fsync' | 'none';

export type UpdatePhase = 'idle' | 'downloading' | 'trial-pending' | 'trial-booted';

export interface UpdateFlash {
  /** The version and image digest (hex) running, confirmed. */
  running: { version: string; digest: string | null };
  boot: number;
  /** Reports sent so far (a report's `n`), kept so a reboot never reuses one. */
  reports: number;
  phase: UpdatePhase;
  /** The download in progress (or the image on trial): manifest (hex), bytes held, rollout. */
  pending?: { manifest: string; offset: number; rollout: string };
  /** The last update that ended: reported again when offered the same image. */
  last?: { digest: string; state: 'confirmed' | 'rolled-back' | 'failed'; reason: string };
}

export class UpdateStore {
  readonly slot0: string;
  readonly slot1: string;
  private readonly stateFile: string;
  /** The download slot, open while written; `dirty` until its writes are flushed. */
  private slotFd?: number;
  private dirty = false;

  constructor(
    readonly dir: string,
    private readonly sync: FlashSync = 'fsync',
  ) {
    mkdirSync(dir, { recursive: true });
    this.slot0 = join(dir, 'slot0.bin');
    this.slot1 = join(dir, 'slot1.bin');
    this.stateFile = join(dir, 'update.json');
  }

  /** The state, or a fresh one running `version` (a factory image in slot 0). */
  load(version: string): UpdateFlash {
    if (existsSync(this.stateFile)) return JSON.parse(readFileSync(this.stateFile, 'utf8')) as UpdateFlash;
    writeFileSync(this.slot0, `factory image ${version}\n`);
    return { running: { version, digest: null }, boot: 0, reports: 0, phase: 'idle' };
  }

  save(s: UpdateFlash): void {
    this.flushSlot1();
    const tmp = `${this.stateFile}.tmp`;
    const fd = openSync(tmp, 'w');
    try {
      writeSync(fd, JSON.stringify(s));
      if (this.sync === 'fsync') fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.stateFile);
  }

  /** Writes `data` at `offset` of the download slot (flushed by the next `save` or `flushSlot1`). */
  writeSlot1(offset: number, data: Uint8Array): void {
    this.slotFd ??= openSync(this.slot1, existsSync(this.slot1) ? 'r+' : 'w');
    this.dirty = true;
    for (let done = 0; done < data.length; )
      done += writeSync(this.slotFd, data, done, data.length - done, offset + done);
  }

  /** Flushes the download slot's writes. */
  flushSlot1(): void {
    if (this.slotFd === undefined) return;
    if (this.dirty && this.sync === 'fsync') fsyncSync(this.slotFd);
    this.dirty = false;
  }

  /** Flushes and closes the download slot (before it is renamed, or the device stops). */
  close(): void {
    this.flushSlot1();
    if (this.slotFd !== undefined) closeSync(this.slotFd);
    this.slotFd = undefined;
  }

  /** Cuts the download slot to `length` bytes (what the state vouches for). */
  truncateSlot1(length: number): void {
    this.flushSlot1();
    if (!existsSync(this.slot1)) writeFileSync(this.slot1, new Uint8Array(0));
    truncateSync(this.slot1, length);
  }

  /** The download slot becomes the running image (the swap made permanent). */
  promoteSlot1(): void {
    this.close();
    renameSync(this.slot1, this.slot0);
  }
}
