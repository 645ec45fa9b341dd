/**
 * Short numbers for device ids and block hashes (data format 4), so the frames view's
 * per-frame entries (frame-keys.ts) carry 4 bytes where format 3 carried a device-id string
 * and a 64-hex hash. Numbers are this directory's own (assigned in arrival order, never
 * reused, counters in `log-meta`): they never leave it, and nothing compares them across
 * replicas (the view's choice of copy compares hashes).
 *
 *   log-device-nos  device id → number
 *   log-device-ids  number → device id
 *   log-block-nos   number (uint32 key) → block hash (32 bytes)    the number is also in log-index
 */
import type { Database, RootDatabase } from 'lmdb';

const DEVICE_NO_KEY = 'deviceNo';
export const BLOCK_NO_KEY = 'blockNo';

/** Device id ↔ number, read through (a reader sees the numbers durable when it asks). */
export class DeviceNumbers {
  protected readonly byId: Database<number, string>;
  protected readonly byNo: Database<string, number>;
  protected readonly ids = new Map<string, number>();
  protected readonly names = new Map<number, string>();

  constructor(root: RootDatabase) {
    this.byId = root.openDB({ name: 'log-device-nos' });
    this.byNo = root.openDB({ name: 'log-device-ids' });
  }

  no(id: string): number | undefined {
    let n = this.ids.get(id);
    if (n === undefined) {
      n = this.byId.get(id);
      if (n !== undefined) this.remember(id, n);
    }
    return n;
  }

  id(no: number): string | undefined {
    let id = this.names.get(no);
    if (id === undefined) {
      id = this.byNo.get(no);
      if (id !== undefined) this.remember(id, no);
    }
    return id;
  }

  /** Every numbered device, by id (the view's order across devices). */
  sorted(): { id: string; no: number }[] {
    const out = new Map<string, number>();
    for (const { key, value } of this.byId.getRange()) out.set(key, value);
    for (const [id, no] of this.ids) out.set(id, no);
    return [...out].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map(([id, no]) => ({ id, no }));
  }

  protected remember(id: string, no: number): void {
    // A site has thousands of devices, not millions; the cap only bounds a pathological one.
    if (this.ids.size >= 1 << 20) {
      this.ids.clear();
      this.names.clear();
    }
    this.ids.set(id, no);
    this.names.set(no, id);
  }
}

/** The writer's side: assigns numbers in the current transaction. */
export class DeviceNumbering extends DeviceNumbers {
  private next: number;
  /** Assigned, not yet seen on disk: written again with every use until it is. */
  private readonly unconfirmed = new Map<string, number>();

  constructor(
    root: RootDatabase,
    private readonly meta: Database<number, string>,
    private readonly track: (p: Promise<unknown>) => void,
    /** The store is closing: a commit settling now has nothing left to read. */
    private readonly closed: () => boolean = () => false,
  ) {
    super(root);
    this.next = this.start();
  }

  private start(): number {
    let next = this.meta.get(DEVICE_NO_KEY) ?? 1;
    for (const k of this.byNo.getKeys({ reverse: true, limit: 1 })) next = Math.max(next, Number(k) + 1);
    return next;
  }

  /** The device's number, assigned now if it has none (queued in the current transaction). */
  assign(id: string): number {
    let n = this.no(id);
    if (n === undefined) {
      n = this.next++;
      this.remember(id, n);
      this.unconfirmed.set(id, n);
    }
    const u = this.unconfirmed.get(id);
    if (u !== undefined) {
      // Until its transaction lands (a conditional write may be skipped, a commit may fail),
      // every transaction that uses the number carries the mapping too.
      this.track(this.byId.put(id, u));
      this.track(this.byNo.put(u, id));
      this.track(this.meta.put(DEVICE_NO_KEY, this.next));
    }
    return n;
  }

  /** The writer keeps every number it knows: forgetting one not yet on disk would number its device twice. */
  protected override remember(id: string, no: number): void {
    this.ids.set(id, no);
    this.names.set(no, id);
  }

  /** After a transaction settled: numbers now on disk need no rewriting. */
  confirm(): void {
    if (this.closed()) return;
    for (const [id, n] of this.unconfirmed) if (this.byId.get(id) === n) this.unconfirmed.delete(id);
  }

  /** Forgets every number (upgrade.ts, after clearing the tables). */
  async reset(): Promise<void> {
    await this.byId.clearAsync();
    await this.byNo.clearAsync();
    this.ids.clear();
    this.names.clear();
    this.unconfirmed.clear();
    await this.meta.remove(DEVICE_NO_KEY);
    this.next = this.start();
  }
}

const noKey = (no: number): Buffer => {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE((no | 0x80000000) >>> 0, 0); // top bit set: see frame-keys.ts
  return b;
};

/** Block number (4-byte big-endian key) → hash (32 bytes). */
export class BlockNumbers {
  private readonly db: Database<Buffer, Buffer>;

  constructor(root: RootDatabase) {
    this.db = root.openDB({ name: 'log-block-nos', keyEncoding: 'binary', encoding: 'binary' });
  }

  /** The block's hash (hex), if numbered (committed). */
  get(no: number): string | undefined {
    return this.db.get(noKey(no))?.toString('hex');
  }

  /** Brings these numbers' entries into the page cache off the main thread (FrameReader.prefetch). */
  prefetch(nos: readonly number[]): Promise<void> {
    return this.db.prefetch(nos.map(noKey));
  }

  put(no: number, hash: string): Promise<unknown> {
    return this.db.put(noKey(no), Buffer.from(hash, 'hex'));
  }

  remove(no: number): Promise<unknown> {
    return this.db.remove(noKey(no));
  }

  /** The highest number held, or 0. */
  last(): number {
    for (const k of this.db.getKeys({ reverse: true, limit: 1 }))
      return k.length === 4 ? k.readUInt32BE(0) & 0x7fffffff : 0;
    return 0;
  }

  clear(): Promise<void> {
    return this.db.clearAsync();
  }
}
