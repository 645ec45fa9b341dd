/**
 * The registry reads through to the store on every lookup (another process, the CLI, may enrol
 * or revoke at any time), and decodes a device's record only when its stored bytes changed.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Registry } from '../../gateway/registry.js';
import { Store } from '../../gateway/store/store.js';
import { tempDir } from '../helpers/env.js';

const KEY_A = 'a1'.repeat(32);
const KEY_B = 'b2'.repeat(32);

describe('Registry.active reads through', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  const open = (): { store: Store; registry: Registry } => {
    const tmp = tempDir('outpost-registry-');
    const store = Store.open(tmp.dir);
    cleanups.push(tmp.cleanup, () => store.close());
    return { store, registry: new Registry(store) };
  };

  it('answers from its last decoding while the stored record is unchanged', async () => {
    const { registry } = open();
    await registry.enroll({ id: 'dev-1', publicKey: KEY_A, model: 'env-1' });
    const first = registry.active('dev-1');
    expect(first?.record.model).toBe('env-1');
    expect(registry.active('dev-1')).toBe(first);
  });

  it('sees a record written by anyone else at once: an edit, a revocation, a new key', async () => {
    const { store, registry } = open();
    await registry.enroll({ id: 'dev-1', publicKey: KEY_A, model: 'env-1' });
    expect(registry.active('dev-1')?.record.model).toBe('env-1');
    // Written as another process would: the table, not this registry.
    await store.devices.put('dev-1', { ...store.devices.get('dev-1')!, model: 'env-2' });
    expect(registry.active('dev-1')?.record.model).toBe('env-2');
    await new Registry(store).revoke('dev-1');
    expect(registry.active('dev-1')).toBeUndefined();
    await new Registry(store).enroll({ id: 'dev-1', publicKey: KEY_B });
    expect(Buffer.from(registry.active('dev-1')!.publicKey).toString('hex')).toBe(KEY_B);
    await store.devices.remove('dev-1');
    expect(registry.active('dev-1')).toBeUndefined();
  });
});
