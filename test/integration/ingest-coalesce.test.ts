/**
 * Coalescing: frames that arrive in separate event-loop turns within `ingest.coalesceMs` of the
 * first share one transaction, and each is still answered only once it is durable. With
 * `log.sealAfterMs: 0` each transaction's frames are sealed in it as one frames block, which
 * makes the commit groups visible as blocks (by default blocks are sealed from the journal
 * about a second later: test/integration/log-journal.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { testDevice } from '../helpers/devices.js';
import { startScopedGateway } from '../helpers/env.js';
import { FrameReader } from '../../gateway/log/frames-index.js';

const nextTurn = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('ingest coalescing window', () => {
  const devs = [testDevice('co-1'), testDevice('co-2'), testDevice('co-3')];
  const warm = testDevice('co-warm');
  const enrol = [...devs, warm].map((d) => ({ id: d.id, publicKey: d.publicKeyHex }));

  it('puts frames of separate turns within the window into one block, acked once it is durable', async () => {
    // A long window: the three submissions, a few turns apart, fall inside it even on a loaded machine.
    const { gw } = await startScopedGateway(enrol, { ingest: { coalesceMs: 1000 }, log: { sealAfterMs: 0 } });
    // The first verification starts a worker thread: done before, so the window is not spent on it.
    expect((await gw.ingest.submit(warm.frame(1, 0), { transport: 'mqtt' })).status).toBe('stored');
    const answers: Promise<unknown>[] = [];
    for (const d of devs) {
      answers.push(gw.ingest.submit(d.frame(1, 0), { transport: 'mqtt' }));
      await nextTurn();
      await nextTurn();
    }
    const outcomes = await Promise.all(answers);
    expect(outcomes.map((o) => (o as { status: string }).status)).toEqual(['stored', 'stored', 'stored']);
    const rows = devs.map((d) => gw.blockLog.frames.get(d.id, 1, 0));
    expect(rows.every((r) => r !== undefined)).toBe(true);
    // One frames block holds all three, at indexes 0, 1, 2.
    expect(new Set(rows.map((r) => r!.block)).size).toBe(1);
    expect(rows.map((r) => r!.index).sort()).toEqual([0, 1, 2]);
    // Acked means durable: a reader on the same environment sees them after the answers.
    expect(FrameReader.plain(gw.store.root).count()).toBe(4);
  }, 60_000);

  it('commits each turn on its own with the window off', async () => {
    const { gw } = await startScopedGateway(enrol, { ingest: { coalesceMs: 0 }, log: { sealAfterMs: 0 } });
    for (const d of devs) {
      // Each answered before the next is sent: three transactions, three frames blocks.
      const o = await gw.ingest.submit(d.frame(1, 0), { transport: 'mqtt' });
      expect(o.status).toBe('stored');
    }
    const blocks = new Set(devs.map((d) => gw.blockLog.frames.get(d.id, 1, 0)?.block));
    expect(blocks.size).toBe(3);
  }, 60_000);
});
