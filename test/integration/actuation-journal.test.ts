/**
 * The audit journal over a real block log: a record that does not encode (a decision whose
 * templated device came out empty) is refused alone; the other records of its turn are still
 * logged in the actuation block, and the refusal is counted and logged.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it, onTestFinished } from 'vitest';
import { actuationBlocks, LogJournal } from '../../gateway/actuation/journal.js';
import { publicKeyFromSeed, signEd25519 } from '../../gateway/crypto/ed25519.js';
import { BlockLog } from '../../gateway/log/block-log.js';
import { Store } from '../../gateway/store/store.js';
import type { ActuationRecord } from '../../protocols/actuation.js';
import { memoryLogger, tempDir } from '../helpers/env.js';

const decision = (rule: string, device: string): ActuationRecord => ({
  type: 'decision',
  at: 1_760_000_000_000,
  rule,
  ruleVersion: 'v1',
  inputs: [],
  reason: 'test',
  action: { kind: 'command', command: { device, actuator: 'fan', value: 1, ttlMs: 1000 } },
});

describe('actuation journal', () => {
  it('a record that does not encode is refused alone; the rest of its batch is logged', async () => {
    const { dir, cleanup } = tempDir('outpost-journal-');
    onTestFinished(cleanup);
    const store = Store.open(dir);
    onTestFinished(() => store.close());
    const seed = randomBytes(32);
    const log = new BlockLog(store, { publicKey: publicKeyFromSeed(seed), sign: (m) => signEd25519(seed, m) });
    const { log: logger, lines } = memoryLogger();
    const journal = new LogJournal(log, logger);
    journal.record([decision('a', 'fan-1'), decision('b', ''), decision('c', 'fan-2')]);
    journal.flush();
    await log.durable();
    const blocks = [...actuationBlocks(log)];
    expect(blocks).toHaveLength(1);
    expect((blocks[0]!.body as ActuationRecord[]).map((r) => (r.type === 'decision' ? r.rule : r.type))).toEqual([
      'a',
      'c',
    ]);
    expect(journal).toMatchObject({ blocks: 1, records: 2, failures: 1 });
    expect(lines.some((l) => String(l.msg).startsWith('actuation record not logged') && l.rule === 'b')).toBe(true);
  });
});
