/**
 * The storage budget on a real lmdb block log: over the budget, this gateway's oldest frames
 * blocks go behind a signed retention mark, never past what every sink exported nor past
 * what `minCopies` siblings hold; and `log.maxBytes` / `log.minCopies` in the config.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, validateConfig } from '../../gateway/config.js';
import { StorageBudget } from '../../gateway/log/budget.js';
import { MIN_BUDGET_BYTES, parseBytes, resolveBudget } from '../../gateway/log/budget-config.js';
import { PRUNABLE_KINDS } from '../../gateway/log/marks.js';
import { StoreUsage } from '../../gateway/store/usage.js';
import { testDevice } from '../helpers/devices.js';
import { memoryLogger } from '../helpers/env.js';
import { logNode } from '../helpers/log-node.js';

const closers: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

async function filledLog(blocks: number) {
  const dev = testDevice('bud-1');
  const node = logNode(randomBytes(32), [], [dev], closers);
  for (let i = 0; i < blocks; i++)
    node.log.appendFrames([{ frame: dev.frame(1, i), rxTime: 1_000 + i, transport: 'mqtt' }]);
  await node.log.settled();
  const usage = new StoreUsage(node.store.root);
  return { ...node, usage };
}

function budget(
  node: Awaited<ReturnType<typeof filledLog>>,
  opts: { exported?: number; held?: number[]; minCopies?: number; maxBytes?: number },
) {
  const { log, lines } = memoryLogger();
  const b = new StorageBudget({
    log: node.log,
    usedBytes: () => node.usage.liveBytes(),
    freeBytes: () => Number.NaN,
    minFreeBytes: 0,
    maxBytes: opts.maxBytes ?? Math.floor(node.usage.liveBytes() / 4), // over the budget whatever a mark can free here
    minCopies: opts.minCopies ?? 0,
    exportedThrough: () => opts.exported ?? Number.POSITIVE_INFINITY,
    heldOwn: () => opts.held ?? [],
    logger: log,
  });
  closers.push(() => b.stop());
  return { b, lines };
}

/** Seqs of the data blocks (frames) still held in the node's own default stream. */
function framesBlocks(node: Awaited<ReturnType<typeof filledLog>>): number[] {
  const out: number[] = [];
  for (const [seq, hash] of node.log.iterStream(node.log.author, 'default')) {
    const kind = node.log.lookup(hash)?.kind;
    if (kind === 'frames') out.push(seq);
    else expect(kind === undefined || !PRUNABLE_KINDS.has(kind) || kind === 'retention').toBe(true);
  }
  return out;
}

describe('storage budget', () => {
  it('prunes the oldest blocks only up to what every sink exported, then reports itself blocked', async () => {
    const node = await filledLog(300);
    const { b, lines } = budget(node, { exported: 40 });
    expect(b.tick()).toBeGreaterThan(0);
    await node.log.settled();
    // seq 0 is the device's enrolment block (kept below a mark); frames blocks 1..40 were exported.
    expect(node.log.mark(node.log.author, 'default')).toBe(41);
    expect(framesBlocks(node)[0]).toBe(41);
    expect(b.status()).toMatchObject({ state: 'pruning', blocksPruned: 40 });
    expect(lines.some((l) => String(l.msg).includes('pruning 40 exported block(s)'))).toBe(true);
    b.tick();
    await node.log.settled();
    expect(node.log.mark(node.log.author, 'default')).toBe(41); // nothing above the cursor goes
    expect(b.status()).toMatchObject({ state: 'blocked', blockedBy: 'export', blocksPruned: 40 });
  });

  it('reports itself blocked only while over the budget (pages freed since the last prune count)', async () => {
    const node = await filledLog(20);
    const maxBytes = 4 * 1024 * 1024;
    let used = 2 * maxBytes;
    const b = new StorageBudget({
      log: node.log,
      usedBytes: () => used,
      freeBytes: () => Number.NaN,
      minFreeBytes: 0,
      maxBytes,
      minCopies: 0,
      exportedThrough: () => -1, // no sink has exported anything
      heldOwn: () => [],
      logger: memoryLogger().log,
    });
    closers.push(() => b.stop());
    b.tick();
    expect(b.status()).toMatchObject({ state: 'blocked', blockedBy: 'export', usedBytes: used });
    used = maxBytes; // a seal's or an earlier prune's deletions landed
    const within = b.status();
    expect(within).toMatchObject({ state: 'within', usedBytes: maxBytes });
    expect(within).not.toHaveProperty('blockedBy');
  });

  it('waits for minCopies siblings to hold a block', async () => {
    const node = await filledLog(300);
    const { b } = budget(node, { minCopies: 2, held: [90, 25, -1] });
    b.tick();
    await node.log.settled();
    expect(node.log.mark(node.log.author, 'default')).toBe(26); // the second-best copy holds up to 25
    b.tick();
    expect(b.status()).toMatchObject({ state: 'blocked', blockedBy: 'copies' });
    const none = budget(await filledLog(50), { minCopies: 1, held: [-1] }).b; // nobody known to hold anything
    none.tick();
    expect(none.status()).toMatchObject({ state: 'blocked', blockedBy: 'copies', blocksPruned: 0 });
  });

  it('never prunes within the budget, and keeps the head', async () => {
    const node = await filledLog(20);
    const { log } = memoryLogger();
    const within = new StorageBudget({
      log: node.log,
      usedBytes: () => node.usage.liveBytes(),
      freeBytes: () => Number.NaN,
      minFreeBytes: 0,
      maxBytes: node.usage.liveBytes() * 2,
      minCopies: 0,
      logger: log,
    });
    closers.push(() => within.stop());
    expect(within.tick()).toBe(0);
    expect(within.status().state).toBe('within');
    const { b } = budget(node, { maxBytes: 1 });
    b.tick();
    await node.log.settled();
    expect(framesBlocks(node)).toEqual([20]); // everything but the head, which the next block chains to
  });
});

describe('storage budget config', () => {
  it('reads sizes and resolves auto against the disk and the floor', () => {
    expect(parseBytes('500MB')).toBe(500e6);
    expect(parseBytes('2 GiB')).toBe(2 * 2 ** 30);
    expect(parseBytes(12345)).toBe(12345);
    expect(parseBytes('lots')).toBeUndefined();
    const GB = 1e9;
    // Half of a 32 GB card.
    expect(resolveBudget('auto', { totalBytes: 32 * GB, freeBytes: 30 * GB, usedBytes: 0, minFreeBytes: 64e6 })).toBe(
      16 * GB,
    );
    // A nearly full disk: only what can be reached above twice the floor.
    expect(
      resolveBudget('auto', { totalBytes: 32 * GB, freeBytes: 2 * GB, usedBytes: GB, minFreeBytes: 0.5 * GB }),
    ).toBe(2 * GB);
    expect(resolveBudget(0, { totalBytes: 32 * GB, freeBytes: GB, usedBytes: 0, minFreeBytes: 0 })).toBe(0);
    expect(validateConfig({}).log).toMatchObject({ maxBytes: 'auto', minCopies: 0 });
    expect(validateConfig({ log: { maxBytes: '8MiB' } }).log.maxBytes).toBe('8MiB');
  });

  it('refuses a size it cannot read, a budget too small, and minCopies no sibling can meet', () => {
    const refused = (raw: unknown, text: string | RegExp): void => {
      expect(() => validateConfig(raw)).toThrow(ConfigError);
      expect(() => validateConfig(raw)).toThrow(text);
    };
    refused({ log: { maxBytes: 'lots' } }, /log\.maxBytes.*500MB/s);
    refused({ log: { maxBytes: 1000 } }, new RegExp(`at least ${MIN_BUDGET_BYTES}`));
    refused({ log: { minCopies: 1 } }, /log\.minCopies.*sync is off/s);
    refused(
      { log: { minCopies: 2 }, sync: { enabled: true, peers: [] } },
      /log\.minCopies.*sync\.peers lists 0 sibling/s,
    );
    refused({ log: { minCopies: -1 } }, 'log.minCopies');
  });
});
