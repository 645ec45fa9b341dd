/**
 * `gateway audit verify --data DIR` without a config on a gateway that syncs: the store
 * remembers the sibling keys sync accepted blocks under, so their blocks are verified (exit 0),
 * not reported as unknown-author. A block whose author was never configured is reported once,
 * by its did:key, with the hint to pass --config or --trust. Three gateway processes syncing
 * over loopback TCP.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { publicKeyFromSeed, signEd25519 } from '../../gateway/crypto/ed25519.js';
import { BlockLog } from '../../gateway/log/block-log.js';
import { Store } from '../../gateway/store/store.js';
import { publicKeyToDidKey } from '../../protocols/index.js';
import { testDevice } from '../helpers/devices.js';
import { tempDir, waitFor } from '../helpers/env.js';
import {
  gatewayCli,
  type GatewayProcess,
  publishFrames,
  type SiblingConfig,
  startGatewayProcess,
  stopGatewayProcess,
  writeSiblingConfigs,
} from '../helpers/process.js';

const running: GatewayProcess[] = [];
let configs: SiblingConfig[] = [];
afterEach(() => {
  for (const g of running.splice(0)) if (g.child.exitCode === null) g.child.kill('SIGKILL');
  for (const c of configs.splice(0)) c.cleanup();
});

describe('audit verify without the config on synced gateways', () => {
  it('verifies the siblings whose blocks sync accepted; names an author never configured, with the hint', async () => {
    const devices = [testDevice('a-0'), testDevice('a-1'), testDevice('a-2')];
    configs = await writeSiblingConfigs(devices);
    const gws = await Promise.all(configs.map((c) => startGatewayProcess(c.file)));
    running.push(...gws);
    await Promise.all(gws.map((g, i) => publishFrames(g.port, devices[i]!, 1, [...Array(12).keys()])));
    const digest = async (c: SiblingConfig): Promise<string> =>
      JSON.parse((await gatewayCli(['log', 'heads', '--json', '--config', c.file])).stdout).digest as string;
    await waitFor(
      async () => new Set(await Promise.all(configs.map(digest))).size === 1,
      30_000,
      'the three gateways to hold the same blocks',
    );
    for (const g of gws) expect(await stopGatewayProcess(g)).toBe(0);

    // No --config, and a working directory without outpost.yaml: only the store knows the siblings.
    const { dir: bare, cleanup } = tempDir('outpost-audit-bare-');
    try {
      for (const [i, c] of configs.entries()) {
        const r = await gatewayCli(['audit', 'verify', '--data', c.dataDir], bare);
        expect(r.stderr).toBe('');
        expect(r.code).toBe(0);
        expect(r.stdout).toContain('by 3 authors');
        expect(r.stdout).toContain('ok: no faults');
        expect(r.stdout).toMatch(new RegExp(`^author ${c.key.slice(0, 16)}… this gateway: \\d+ blocks verified$`, 'm'));
        for (const [j, sibling] of configs.entries())
          if (j !== i)
            expect(r.stdout).toMatch(
              new RegExp(
                `^author ${sibling.key.slice(0, 16)}… gw-${j} \\(accepted through sync since [0-9T:.-]+Z\\): \\d+ blocks verified$`,
                'm',
              ),
            );
      }

      // A block whose author was never configured anywhere: authored into gw-0's store directly.
      const seed = randomBytes(32);
      const stranger = publicKeyFromSeed(seed);
      const store = Store.open(configs[0]!.dataDir);
      const log = new BlockLog(store, { publicKey: stranger, sign: (m) => signEd25519(seed, m) });
      log.appendFrames([{ frame: devices[0]!.frame(9, 0), rxTime: Date.now(), transport: 'mqtt' }]);
      await store.durable();
      await store.close();
      const did = publicKeyToDidKey(stranger);
      const r = await gatewayCli(['audit', 'verify', '--data', configs[0]!.dataDir], bare);
      expect(r.code).toBe(1);
      // Once, by name, with the hint; no FAULT line per block.
      expect(r.stdout).toContain(`UNKNOWN AUTHOR ${did} (`);
      expect(r.stdout).toContain(
        `: 1 block not verified: never configured here (not in sync.peers, never accepted through sync); pass --config with it in sync.peers, or --trust ${did}`,
      );
      expect(r.stdout).not.toContain('FAULT unknown-author');
      expect(r.stdout).toContain('1 faults: unknown-author 1');
      expect(r.stdout).toMatch(/^author [0-9a-f]{16}… gw-1 \(accepted through sync since .*\): \d+ blocks verified$/m);
      const trusted = await gatewayCli(['audit', 'verify', '--data', configs[0]!.dataDir, '--trust', did], bare);
      expect(trusted.code).toBe(0);
      expect(trusted.stdout).toMatch(
        new RegExp(`^author ${toHex16(stranger)}… ${did} \\(--trust\\): 1 block verified$`, 'm'),
      );
    } finally {
      cleanup();
    }
  }, 300_000);
});

const toHex16 = (k: Uint8Array): string => Buffer.from(k).toString('hex').slice(0, 16);
