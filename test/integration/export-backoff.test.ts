/**
 * A sink that is down is retried on its backoff, not once per new block: frames keep
 * arriving (a block each) while the sink refuses, and the exporter's attempts stay on the
 * doubling schedule; once the sink is back, every frame reaches it once.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { publicKeyFromSeed, signEd25519 } from '../../gateway/crypto/ed25519.js';
import { CursorStore } from '../../gateway/export/cursors.js';
import { SinkExporter } from '../../gateway/export/exporter.js';
import { BlockLogSource } from '../../gateway/export/log-source.js';
import type { ExportFrame } from '../../gateway/export/source.js';
import { BlockLog } from '../../gateway/log/block-log.js';
import { createLogger } from '../../gateway/logger.js';
import { Store } from '../../gateway/store/store.js';
import { testDevice } from '../helpers/devices.js';
import { tempDir } from '../helpers/env.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('export backoff', () => {
  it('does not retry a failing sink for every new block, and delivers everything once it is back', async () => {
    const { dir, cleanup } = tempDir('outpost-export-backoff-');
    const store = Store.open(dir);
    const dev = testDevice('dev-a');
    store.devices.putSync(dev.id, { id: dev.id, publicKey: dev.publicKeyHex, enrolledAt: 1 });
    const seed = randomBytes(32);
    const log = new BlockLog(store, { publicKey: publicKeyFromSeed(seed), sign: (m) => signEd25519(seed, m) });
    let up = false;
    let attempts = 0;
    const delivered: ExportFrame[] = [];
    const sink = {
      name: 'warehouse',
      deliver: async (frames: readonly ExportFrame[]) => {
        attempts++;
        if (!up) throw new Error('connect ECONNREFUSED');
        delivered.push(...frames);
      },
      close: async () => {},
    };
    const exporter = new SinkExporter(
      sink,
      new BlockLogSource(log, store),
      new CursorStore(store),
      {
        batchFrames: 100,
        maxFramesPerSecond: 0,
        resendPriority: 'oldest',
        readable: () => true,
        minBackoffMs: 100,
        maxBackoffMs: 400,
      },
      createLogger('silent'),
    ).start();
    try {
      // 60 blocks over ~1.2 s while the sink is down.
      for (let i = 0; i < 60; i++) {
        log.appendFrames([{ frame: dev.frame(1, i), rxTime: Date.now(), transport: 'mqtt' }]);
        await sleep(20);
      }
      await log.settled();
      expect(exporter.status().state).toBe('failing');
      // 100, 200, 400, 400, … ms: about 5 attempts in 1.2 s, never one per block.
      expect(attempts).toBeGreaterThanOrEqual(2);
      expect(attempts).toBeLessThanOrEqual(8);
      up = true;
      const deadline = Date.now() + 5_000;
      while (Date.now() < deadline && exporter.status().lagBlocks > 0) await sleep(50);
      expect(exporter.status().lagBlocks).toBe(0);
      expect(delivered.map((f) => f.seq)).toEqual([...Array(60).keys()]);
    } finally {
      await exporter.stop();
      await store.close();
      cleanup();
    }
  });
});
