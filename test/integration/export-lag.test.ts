/**
 * An exporter's lag in seconds is how old its backlog is, not how long since it last found
 * the log empty: under steady ingest a sink that keeps up (each batch done before many more
 * blocks arrive) never finds the log empty, and its lag must stay about one batch long, or
 * a busy gateway raises `sink-lagging` for a sink that is fine. A sink that stops keeping up
 * shows a lag that grows with its backlog.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it, onTestFinished } from 'vitest';
import { publicKeyFromSeed, signEd25519 } from '../../gateway/crypto/ed25519.js';
import { CursorStore } from '../../gateway/export/cursors.js';
import { SinkExporter } from '../../gateway/export/exporter.js';
import { BlockLogSource } from '../../gateway/export/log-source.js';
import type { ExportFrame } from '../../gateway/export/source.js';
import { BlockLog } from '../../gateway/log/block-log.js';
import { createLogger } from '../../gateway/logger.js';
import { Store } from '../../gateway/store/store.js';
import { testDevice } from '../helpers/devices.js';
import { testTempDir } from '../helpers/env.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('export lag', () => {
  it('stays about one batch long for a sink that keeps up with steady ingest, and grows when it stops', async () => {
    const store = Store.open(testTempDir('outpost-export-lag-'));
    const dev = testDevice('dev-lag');
    store.devices.putSync(dev.id, { id: dev.id, publicKey: dev.publicKeyHex, enrolledAt: 1 });
    const seed = randomBytes(32);
    const log = new BlockLog(store, { publicKey: publicKeyFromSeed(seed), sign: (m) => signEd25519(seed, m) });
    let slow = false;
    let delivered = 0;
    const sink = {
      name: 'warehouse',
      // 40 ms a batch (a round trip to a database), blocks every 10 ms: a new block always waits.
      deliver: async (frames: readonly ExportFrame[]) => {
        await sleep(slow ? 2_000 : 40);
        delivered += frames.length;
      },
    };
    const exporter = new SinkExporter(
      sink,
      new BlockLogSource(log, store),
      new CursorStore(store),
      { batchFrames: 500, maxFramesPerSecond: 0, resendPriority: 'oldest', readable: () => true },
      createLogger('silent'),
    ).start();
    onTestFinished(async () => {
      await exporter.stop();
      await log.settled();
      await store.close();
    });
    let seq = 0;
    const ingest = async (ms: number): Promise<void> => {
      for (const end = Date.now() + ms; Date.now() < end; ) {
        log.appendFrames([{ frame: dev.frame(1, seq++), rxTime: Date.now(), transport: 'mqtt' }]);
        await sleep(10);
      }
    };
    let maxLag = 0;
    const watch = setInterval(() => {
      maxLag = Math.max(maxLag, exporter.status().lagSeconds);
    }, 50);
    onTestFinished(() => clearInterval(watch));

    await ingest(3_000);
    expect(delivered).toBeGreaterThan(seq / 2); // it kept up
    // About one batch (40 ms) plus scheduling; far below the 3 s of ingest.
    expect(maxLag).toBeLessThan(1);

    slow = true; // now 2 s a batch: the backlog ages
    const before = Date.now();
    await ingest(3_000);
    const lag = exporter.status().lagSeconds;
    expect(lag).toBeGreaterThan(1);
    expect(lag).toBeLessThanOrEqual((Date.now() - before) / 1000 + 0.5);
  }, 30_000);
});
