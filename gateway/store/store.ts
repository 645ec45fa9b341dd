/**
 * The local store: one lmdb environment under the data directory, holding the device
 * registry, the replay windows and the block log's tables (gateway/log). Frames live once,
 * in their blocks (gateway/log/frames-index.ts reads them). Writes issued in one event-loop
 * turn share one lmdb transaction (group commit); `durable()` resolves once that transaction
 * is flushed to disk, which is when a frame may be acked.
 */
import { mkdirSync } from 'node:fs';
import { arch } from 'node:os';
import { join } from 'node:path';
import { type Database, open, type RootDatabase, type RootDatabaseOptionsWithPath } from 'lmdb';

/**
 * lmdb-js leaves one orphaned rejected promise per failed commit (seen with
 * ENOSPC: every failed transaction also surfaces as an unhandled rejection we
 * cannot attach to). The failure itself reaches us through `durable()`, so the
 * process-level handler may treat these as already reported.
 */
export function isStoreCommitFailure(reason: unknown): boolean {
  return reason instanceof Error && 'commitError' in reason && reason.message.startsWith('Commit failed');
}

/**
 * Observes the `commitError` promise lmdb hangs on a failed write's error, so a failure the
 * caller handles (a retry, say) does not also surface as an unhandled rejection of the raw
 * lmdb error (ENOSPC, EIO), which no process handler can tell from a real fault.
 */
function observeCommitError(err: unknown): void {
  void (err as { commitError?: Promise<unknown> } | undefined)?.commitError?.catch(() => {});
}

/** A write not tracked by `durable()` whose failure the caller handles: its commit error is observed too. */
export function untracked<T>(p: Promise<T>): Promise<T> {
  p.catch(observeCommitError);
  return p;
}

export interface DeviceRecord {
  readonly id: string;
  /** Raw Ed25519 public key, hex. */
  readonly publicKey: string;
  readonly site?: string;
  readonly model?: string;
  readonly name?: string;
  readonly enrolledAt: number;
  readonly revokedAt?: number;
}

/** Persisted replay memory of one device (gateway/ingest/replay-window.ts), written in the transaction of the frames it marks. */
export interface ReplayRecord {
  /** Boots below this were forgotten. */
  readonly bootFloor: number;
  /** The remembered boots: seqs below `floor` forgotten, stored seqs as [lo, hi, lo, hi, …] inclusive. */
  readonly boots: readonly { readonly boot: number; readonly floor: number; readonly ranges: readonly number[] }[];
}

/** The single-bitmap record of earlier versions (bit i set = seq `max - i` of `boot` seen); read, never written. */
export interface LegacyWindowRecord {
  readonly boot: number;
  readonly max: number;
  readonly bits: Uint8Array;
}

export type WindowRecord = ReplayRecord | LegacyWindowRecord;

const is64Bit = ['x64', 'arm64', 'ppc64', 's390x', 'riscv64', 'loong64', 'mips64el'].includes(arch());
/** The lmdb map reserved up front on 64-bit hosts (see the constructor): 16 GiB. */
const MAP_BYTES = 16 * 1024 ** 3;

export class Store {
  readonly root: RootDatabase;
  readonly devices: Database<DeviceRecord, string>;
  private readonly windows: Database<WindowRecord, string>;
  private lastWrite: Promise<unknown> = Promise.resolve();

  private constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
    // noReadAhead (MDB_NORDAHEAD: madvise MADV_RANDOM): a read brings in the page it touches, not
    // the kernel's read-around window, which the kernel's fault-around then mapped up to 64 KB of
    // into RSS for every scattered block read (bench/README.md, "Memory with 1 000 000 frames").
    // lmdb-js's types omit the option.
    // mapSize: lmdb-js otherwise maps 128 KB and maps the file again, larger, each time it
    // outgrows the map, keeping every earlier mapping: pages read through several mappings
    // count in RSS once per mapping (a 1 000-device rollout: 5 mappings, 7.5 MB of file, 16 MB
    // resident; bench/README.md). Reserved once here, large: address space only (the file is
    // not extended, and read-only shared mappings are not committed memory); a store past it
    // is remapped as before. 64-bit hosts only: a 32-bit address space keeps lmdb-js's default.
    const options: RootDatabaseOptionsWithPath & { noReadAhead: boolean } = {
      path: join(dir, 'outpost.lmdb'),
      maxDbs: 64,
      compression: false,
      overlappingSync: false,
      noReadAhead: true,
      ...(is64Bit && { mapSize: MAP_BYTES }),
    };
    this.root = open(options);
    const [devices, windows] = this.tables(() => [
      this.root.openDB<DeviceRecord, string>({ name: 'devices' }),
      this.root.openDB<WindowRecord, string>({ name: 'replay-windows' }),
    ]);
    this.devices = devices;
    this.windows = windows;
  }

  /**
   * Runs `open` (constructors that open tables, synchronously) in one write transaction. lmdb-js
   * opens each table in a write transaction of its own, which on a new data directory creates
   * it and commits with an fdatasync: 28 at a first start, 0.1 to 0.4 s of its time on a disk
   * another process keeps busy (bench/README.md, "Start to first frame acked"). Writes `open`
   * makes go into the same transaction; it must not queue an asynchronous `transaction`.
   */
  tables<T>(open: () => T): T {
    return this.root.transactionSync(open);
  }

  static open(dir: string): Store {
    return new Store(dir);
  }

  putWindow(device: string, w: ReplayRecord): void {
    this.track(this.windows.put(device, w));
  }

  getWindow(device: string): WindowRecord | undefined {
    return this.windows.get(device);
  }

  /**
   * A promise for everything queued so far: it resolves once those writes are
   * committed and flushed to disk, and rejects if their transaction failed
   * (for example, the disk is full). Take it right after queuing a batch.
   */
  durable(): Promise<void> {
    // Transactions commit in order, so the last queued write settling covers all before it.
    const last = this.lastWrite;
    return last.then(() => this.root.flushed).then(() => undefined);
  }

  /** Adds a write queued on `root` (or one of its databases) to what `durable()` waits for. */
  track(p: Promise<unknown>): void {
    // lmdb hands every unconditional write of one batch the same promise: observed once.
    if (p === this.lastWrite) return;
    // Keep failures observable through durable() without an unhandled rejection in between;
    // lmdb also hangs a rejected `commitError` promise on the error, which must be observed too.
    p.catch(observeCommitError);
    this.lastWrite = p;
  }

  /** Bytes the environment uses on disk (pages in use × page size). */
  sizeBytes(): number {
    const s = this.root.getStats() as { pageSize: number; lastPageNumber: number };
    return (s.lastPageNumber + 1) * s.pageSize;
  }

  /** Set when `close` begins: what settles after it (a commit's listeners) must not read. */
  closed = false;

  async close(): Promise<void> {
    this.closed = true;
    await this.root.close();
  }
}
