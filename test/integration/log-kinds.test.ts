/**
 * Blocks other than frames blocks by kind (`log-kinds`, data format 3): a start finds its
 * key-wrap, rule, firmware and actuation blocks there instead of walking the index of every
 * block; a format-2 directory is read by walking until its upgrade builds the table, and the
 * upgrade is idempotent (run again after a cut, it finds the same blocks).
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it, onTestFinished } from 'vitest';
import { publicKeyFromSeed, signEd25519 } from '../../gateway/crypto/ed25519.js';
import { BlockLog, DEFAULT_POLICY } from '../../gateway/log/block-log.js';
import { SCHEMA_VERSION } from '../../gateway/log/upgrade.js';
import { ruleVersionsInLog } from '../../gateway/rule-versions.js';
import { Store } from '../../gateway/store/store.js';
import { ruleVersionBody } from '../../protocols/rule-version.js';
import { tempDir } from '../helpers/env.js';

describe('blocks by kind', () => {
  it('a non-frames block is found by kind; a format-2 directory is read by walking, then upgraded', async () => {
    const { dir, cleanup } = tempDir('outpost-kinds-');
    onTestFinished(cleanup);
    const seed = randomBytes(32);
    const open = () => {
      const store = Store.open(dir);
      const log = new BlockLog(store, { publicKey: publicKeyFromSeed(seed), sign: (m) => signEd25519(seed, m) });
      onTestFinished(() => store.close());
      return { store, log };
    };
    let { store, log } = open();
    for (let i = 0; i < 3; i++)
      log.appendBlock(
        {
          kind: 'rule',
          body: ruleVersionBody({
            id: `r${i}`,
            version: `v${i}`,
            kind: 'condition',
            file: 'r.yaml',
            definition: `{"n":${i}}`,
            at: 1,
          }),
        },
        DEFAULT_POLICY,
      );
    await log.durable();
    const rules = [...log.hashesOfKind('rule')].sort();
    expect(rules).toHaveLength(3);
    expect([...log.hashesOfKind('keys')]).toEqual([]);
    expect([...ruleVersionsInLog(log)].map((r) => r.id).sort()).toEqual(['r0', 'r1', 'r2']);

    // The same directory as the previous release left it: no table, format 2.
    await store.root.openDB({ name: 'log-kinds' }).clearAsync();
    await store.root.openDB<number, string>({ name: 'log-meta' }).put('schema', 2);
    await store.close();
    ({ store, log } = open());
    expect(log.needsUpgrade).toBe(true);
    expect([...log.hashesOfKind('rule')].sort()).toEqual(rules); // walked, before the upgrade
    expect(await log.upgrade()).toMatchObject({ from: 2, blocksByKind: 3 });
    expect(store.root.openDB<number, string>({ name: 'log-meta' }).get('schema')).toBe(SCHEMA_VERSION);
    expect([...log.hashesOfKind('rule')].sort()).toEqual(rules);

    // Cut short after the table but before the schema: the next start builds it again, once.
    await store.root.openDB<number, string>({ name: 'log-meta' }).put('schema', 2);
    await store.close();
    ({ store, log } = open());
    expect(await log.upgrade()).toMatchObject({ from: 2, blocksByKind: 3 });
    await store.close();
    ({ store, log } = open());
    expect(log.needsUpgrade).toBe(false);
    expect([...log.hashesOfKind('rule')].sort()).toEqual(rules);
    expect([...store.root.openDB({ name: 'log-kinds' }).getKeys()]).toHaveLength(3);
  });
});
