/** Rule versions in the log (decisions trace back to the rule version that made them). */
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { publicKeyFromSeed, signEd25519 } from '../../gateway/crypto/ed25519.js';
import { auditLog } from '../../gateway/log/audit.js';
import { BlockLog } from '../../gateway/log/block-log.js';
import { logRuleVersions, ruleVersionsInLog } from '../../gateway/rule-versions.js';
import { Store } from '../../gateway/store/store.js';
import { loadRuleFiles } from '../../rules/dsl/load.js';
import { parseRuleFile } from '../../rules/dsl/parse.js';
import { tempDir } from '../helpers/env.js';

describe('rule versions in the log', () => {
  it('each rule version is logged once as a signed rule block whose definition hashes to the version', async () => {
    const { dir, cleanup } = tempDir('outpost-rulever-');
    try {
      const seed = randomBytes(32);
      const store = Store.open(dir);
      const log = new BlockLog(store, { publicKey: publicKeyFromSeed(seed), sign: (m) => signEd25519(seed, m) });
      const set = await loadRuleFiles(['rules/examples/factory-cell/rules.yaml', 'test/fixtures/rules/door-open.ts']);
      expect(logRuleVersions(log, set, { now: 1000 })).toBe(3);
      await store.durable();
      expect(logRuleVersions(log, set, { now: 2000 })).toBe(0); // a restart with the same rules adds nothing
      const changed = parseRuleFile(
        'rules/examples/factory-cell/rules.yaml',
        (await import('node:fs'))
          .readFileSync('rules/examples/factory-cell/rules.yaml', 'utf8')
          .replace('agg.rate > 0.2', 'agg.rate > 0.3'),
      );
      expect(logRuleVersions(log, changed, { now: 3000 })).toBe(1); // only press-heating changed
      await store.durable();
      expect(logRuleVersions(log, set, { now: 4000 })).toBe(0); // back to a version logged before
      const held = [...ruleVersionsInLog(log)];
      expect(held.map((v) => `${v.id}@${v.at}`).sort()).toEqual([
        'conveyor@1000',
        'door-open@1000',
        'press-heating@1000',
        'press-heating@3000',
      ]);
      for (const v of held) {
        expect(v.author).toBe(log.author);
        // anyone can check a version against its definition (YAML rules: no declared label)
        expect(v.version).toBe(createHash('sha256').update(v.definition).digest('hex').slice(0, 12));
      }
      expect(held.find((v) => v.id === 'door-open')).toMatchObject({
        kind: 'custom',
        file: 'test/fixtures/rules/door-open.ts',
      });
      expect(JSON.parse(held.find((v) => v.id === 'conveyor')!.definition)).toMatchObject({
        id: 'conveyor',
        machine: { initial: 'running' },
      });
      expect(auditLog(log).faults).toEqual([]);
      await store.close();
    } finally {
      cleanup();
    }
  });
});
