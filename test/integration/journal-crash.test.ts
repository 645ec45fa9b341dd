/**
 * A gateway process killed with SIGKILL while acked frames wait in its journal (their blocks
 * not sealed yet): the store still shows every acked frame (from the journal), and the next
 * start seals them into signed blocks before ingest: each acked frame once, `audit verify`
 * clean, the journal empty.
 */
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { JournalTable } from '../../gateway/log/journal-table.js';
import { Store } from '../../gateway/store/store.js';
import { topics } from '../../protocols/index.js';
import { testDevice } from '../helpers/devices.js';
import { tempDir } from '../helpers/env.js';
import { readFrames } from '../helpers/frames.js';
import {
  expectStoredOnceAndAudited,
  startGatewayProcess,
  stopGatewayProcess,
  writeGatewayConfig,
} from '../helpers/process.js';

describe('journal crash safety', () => {
  const tmp = tempDir();
  afterEach(() => tmp.cleanup());

  it('SIGKILL with a non-empty journal: the restart seals it, every acked frame once, audit clean', async () => {
    const devices = Array.from({ length: 4 }, (_, i) => testDevice(`jc-${i}`));
    const dataDir = join(tmp.dir, 'data');
    // A long window: nothing is sealed by time, so the kill finds a journal (and a block sealed at the cap).
    const configFile = writeGatewayConfig(
      tmp.dir,
      dataDir,
      devices.map((d) => ({ id: d.id, publicKey: d.publicKeyHex })),
      ['log: { sealAfterMs: 60000 }'],
    );
    const first = await startGatewayProcess(configFile);
    const perDevice = 300;
    await Promise.all(
      devices.map(async (d) => {
        const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${first.port}`, { clientId: d.id, reconnectPeriod: 0 });
        for (let s = 0; s < perDevice; s += 50)
          await Promise.all(
            Array.from({ length: 50 }, (_, k) =>
              c.publishAsync(topics.up(d.id), Buffer.from(d.frame(1, s + k)), { qos: 1 }),
            ),
          );
        c.end(true);
      }),
    );
    // Every publish above was PUBACKed.
    first.child.kill('SIGKILL');
    await new Promise((r) => first.child.once('exit', r));

    const n = devices.length * perDevice;
    const before = await readFrames(dataDir);
    expect(before).toHaveLength(n);
    const pending = before.filter((f) => f.block === null).length;
    expect(pending).toBeGreaterThan(0);
    expect(pending).toBeLessThan(n); // 1024 of them filled a block, sealed before the kill

    const second = await startGatewayProcess(configFile);
    expect(
      second.logs.some((l) => l.frames === pending && String(l.msg).includes('journaled frames left by the last run')),
    ).toBe(true);
    expect(await stopGatewayProcess(second)).toBe(0);

    const after = await readFrames(dataDir);
    expect(after.every((f) => f.block !== null)).toBe(true);
    expect(after.map((f) => `${f.device}/${f.seq}`).sort()).toEqual(before.map((f) => `${f.device}/${f.seq}`).sort());
    await expectStoredOnceAndAudited(dataDir, n);
    const store = Store.open(dataDir);
    try {
      expect(new JournalTable(store.root).isEmpty()).toBe(true);
    } finally {
      await store.close();
    }
  }, 120_000);
});
