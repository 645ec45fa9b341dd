/**
 * The sync acceptance suite: one set of cases every sibling link must pass, run by sync.test.ts
 * with one small adapter per link (sync-tcp, sync-mqtt-embedded, sync-mosquitto) that says where the hub answers
 * and how a sibling reaches it. Gateways are whole in-process gateways (real lmdb stores,
 * the `Siblings` part dialling as in the field, rounds driven by the test), in a hub
 * topology: gw-b answers, gw-a and gw-c dial it, each through its own TCP proxy standing for
 * its network path (`cut()` is a partition, `restore()` heals it).
 *
 * Cases: three gateways converge (same heads digest, every frame in every view), and after a
 * partition and its heal converge again with nothing lost on either side; a policy a sibling may not hold never
 * reaches it, not even relayed by a sibling that holds it; a gateway restarted on its data
 * directory resumes where it stopped (only what it missed moves).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestOptions } from 'vitest';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { Gateway } from '../../gateway/gateway.js';
import { GatewayIdentity } from '../../gateway/identity.js';
import { decodeSignedBlock, type FrameEntry, toHex } from '../../protocols/index.js';
import { TcpProxy } from '../chaos/proxy.js';
import { frameEntries, testDevice } from '../helpers/devices.js';
import { running, startScopedGateway, testTempDir, waitFor } from '../helpers/env.js';

export interface SyncAdapter {
  /** The link's name in test names. */
  readonly link: string;
  /** vitest options of the whole suite, e.g. `needs('mosquitto')`. */
  readonly options?: TestOptions;
  /**
   * Runs before the gateways start (e.g. a Mosquitto for the test, stopped with `onTestFinished`);
   * returns sync config for the hub (e.g. `brokers:` where it answers) and what `hubPort` needs.
   */
  prepare?(): Promise<{ hubSync: Record<string, unknown>; port?: number }>;
  /** The TCP port on 127.0.0.1 where siblings reach the hub, once the hub runs. */
  hubPort(hub: Gateway, prepared: { port?: number }): number;
  /** A peer address (config `sync.peers[].url`) for a port on 127.0.0.1. */
  url(port: number): string;
}

type Name = 'gw-a' | 'gw-b' | 'gw-c';
const DIALERS = ['gw-a', 'gw-c'] as const;

const dev = testDevice('acc-sync-dev');
const devices = [{ id: dev.id, publicKey: dev.publicKeyHex }];

/** `n` frames of one boot, as a gateway that heard them would log them. */
const frames = (boot: number, n: number): FrameEntry[] => frameEntries(dev, boot, n);

interface Mesh {
  readonly gw: Record<Name, Gateway>;
  readonly proxy: Record<'gw-a' | 'gw-c', TcpProxy>;
  /** Stops a gateway and starts it again on the same data directory and config. */
  restart(name: Name): Promise<Gateway>;
}

/** Starts the hub (gw-b) and its dialling siblings, each identity made up front so the others can name its key. */
async function mesh(adapter: SyncAdapter, names: readonly Name[], policy?: string): Promise<Mesh> {
  const dirs = Object.fromEntries(names.map((n) => [n, testTempDir(`outpost-acc-${n}-`)])) as Record<Name, string>;
  const hex = Object.fromEntries(
    names.map((n) => [n, toHex(GatewayIdentity.loadOrCreate(n, dirs[n]).publicKey)]),
  ) as Record<Name, string>;
  let policyFile: string | undefined;
  if (policy) {
    policyFile = join(testTempDir('outpost-acc-policy-'), 'policies.yaml');
    writeFileSync(policyFile, policy);
  }
  const configs = {} as Record<Name, Record<string, unknown>>;
  const start = async (n: Name): Promise<Gateway> => (await startScopedGateway(devices, configs[n]!, dirs[n])).gw;
  const config = (n: Name, sync: Record<string, unknown>): Record<string, unknown> => ({
    gateway: { id: n, dataDir: dirs[n] },
    ...(policyFile && { policy: { file: policyFile } }),
    // Nothing is ingested here (frames are logged directly): no verify worker threads to start.
    ingest: { verifyWorkers: 0 },
    sync: { enabled: true, host: '127.0.0.1', port: 0, intervalSeconds: 3600, ...sync },
  });

  const prepared = (await adapter.prepare?.()) ?? { hubSync: {} };
  configs['gw-b'] = config('gw-b', {
    peers: names.filter((n) => n !== 'gw-b').map((n) => ({ id: n, publicKey: hex[n] })),
    ...prepared.hubSync,
  });
  const gw = { 'gw-b': await start('gw-b') } as Record<Name, Gateway>;
  const proxy = {} as Record<'gw-a' | 'gw-c', TcpProxy>;
  await Promise.all(
    DIALERS.filter((d) => names.includes(d)).map(async (n) => {
      const p = await TcpProxy.start(n, adapter.hubPort(gw['gw-b'], prepared));
      onTestFinished(() => p.close());
      proxy[n] = p;
      // It dials only the hub, but knows every sibling (blocks they authored reach it through the hub).
      const others = names.filter((o) => o !== n && o !== 'gw-b').map((o) => ({ id: o, publicKey: hex[o] }));
      configs[n] = config(n, {
        peers: [{ id: 'gw-b', publicKey: hex['gw-b'], url: adapter.url(p.port) }, ...others],
      });
      gw[n] = await start(n);
    }),
  );
  return {
    gw,
    proxy,
    async restart(n) {
      await gw[n].stop();
      gw[n] = await start(n);
      return gw[n];
    },
  };
}

/** Dialling rounds until every gateway in `all` has the same heads digest; then their writes are committed. */
async function converge(dialers: readonly Gateway[], all: readonly Gateway[]): Promise<void> {
  await waitFor(
    async () => {
      // A dialer's own scheduled round may be the one running (ours then returns at once): loop.
      for (const d of dialers) await running(d, 'siblings').round(false);
      return new Set(all.map((g) => g.blockLog.headsDigest())).size === 1;
    },
    20_000,
    'heads digests equal',
  );
  await Promise.all(all.map((g) => g.blockLog.durable()));
}

const frameCount = (g: Gateway): number => [...g.blockLog.frameView()].length;

/** The policy (stream) of every block a gateway holds. */
function streamsHeld(g: Gateway): string[] {
  return [...g.blockLog.rawBlocks()].map(({ envelope }) => {
    const d = decodeSignedBlock(envelope);
    if (!d.ok) throw new Error(`${g.config.gateway.id} holds a malformed block`);
    return d.value.block.stream;
  });
}

/** Principals by gateway id: every gateway's config names every sibling (sync.peers). */
const POLICY = `admins: []
policies:
  shared: { reach: fleet, relations: { holder: ["*"] } }
  ab-only: { reach: fleet, relations: { holder: [gw-a, gw-b] } }
default: shared
`;

export function syncAcceptance(adapter: SyncAdapter): void {
  describe(`sync acceptance over ${adapter.link}`, adapter.options ?? {}, () => {
    it('three gateways converge (same heads digest, every frame in every view); after a partition and its heal they converge again, nothing lost on either side', async () => {
      const m = await mesh(adapter, ['gw-a', 'gw-b', 'gw-c']);
      const { 'gw-a': a, 'gw-b': b, 'gw-c': c } = m.gw;
      a.blockLog.appendFrames(frames(1, 30));
      a.blockLog.appendFrames(frames(2, 30));
      b.blockLog.appendFrames(frames(10, 20));
      c.blockLog.appendFrames(frames(20, 25));
      await converge([a, c], [a, b, c]);
      for (const g of [a, b, c]) expect(frameCount(g), g.config.gateway.id).toBe(105);
      for (const d of [a, c]) expect(running(d, 'siblings').status()[0]!.lastError).toBeUndefined();

      m.proxy['gw-c'].cut();
      // Both sides keep writing while apart; the side still connected keeps syncing.
      a.blockLog.appendFrames(frames(3, 10));
      c.blockLog.appendFrames(frames(30, 15));
      await converge([a], [a, b]);
      await running(c, 'siblings').round(false);
      expect(running(c, 'siblings').status()[0]!.lastError).toBeDefined();
      expect(frameCount(c)).toBe(120); // what it had before the cut and its own since
      expect(frameCount(b)).toBe(115);
      m.proxy['gw-c'].restore();
      await converge([a, c], [a, b, c]);
      for (const g of [a, b, c]) expect(frameCount(g), g.config.gateway.id).toBe(130);
      expect(running(c, 'siblings').status()[0]!.lastError).toBeUndefined();
    });

    it('a policy a sibling may not hold never reaches it, not even relayed by one that holds it', async () => {
      const m = await mesh(adapter, ['gw-a', 'gw-b', 'gw-c'], POLICY);
      const { 'gw-a': a, 'gw-b': b, 'gw-c': c } = m.gw;
      a.blockLog.appendFrames(frames(1, 10), 'ab-only@1');
      a.blockLog.appendFrames(frames(2, 10), 'shared@1');
      c.blockLog.appendFrames(frames(3, 10), 'shared@1');
      // Rounds until gw-b holds all it may (gw-a's ab-only blocks among them) and gw-c its shared
      // frames; then gw-c dials once more, when gw-b could relay the ab-only blocks if it would.
      await waitFor(
        async () => {
          for (const d of [a, c]) await running(d, 'siblings').round(false);
          return frameCount(a) === 30 && frameCount(b) === 30 && frameCount(c) === 20;
        },
        20_000,
        'the shared frames everywhere',
      );
      await running(c, 'siblings').round(false);
      await Promise.all([a, b, c].map((g) => g.blockLog.durable()));
      expect(streamsHeld(b)).toContain('ab-only');
      expect(streamsHeld(c)).not.toContain('ab-only');
      expect(frameCount(c)).toBe(20); // both gateways' shared frames reached it
      expect(frameCount(b)).toBe(30);
      expect(frameCount(a)).toBe(30);
      // The relay says what it withheld and why.
      const withheld = (b.status() as { policy: { withheld: Record<string, string>[] } }).policy.withheld;
      expect(withheld).toContainEqual(
        expect.objectContaining({ peer: 'gw-c', stream: 'ab-only', missing: 'holder|reader' }),
      );
    });

    it('a gateway restarted on its data directory resumes: only what it missed moves', async () => {
      const m = await mesh(adapter, ['gw-a', 'gw-b']);
      const { 'gw-b': b } = m.gw;
      m.gw['gw-a'].blockLog.appendFrames(frames(1, 20));
      b.blockLog.appendFrames(frames(2, 20));
      await converge([m.gw['gw-a']], [m.gw['gw-a'], b]);
      await m.gw['gw-a'].stop();
      // While it is down its sibling goes on.
      const before = b.blockLog.blockCount();
      b.blockLog.appendFrames(frames(3, 20));
      b.blockLog.appendFrames(frames(4, 20));
      await b.blockLog.durable();
      const missed = b.blockLog.blockCount() - before;
      const a = await m.restart('gw-a');
      expect(frameCount(a)).toBe(40); // what it held survived the restart
      await converge([a], [a, b]);
      expect(frameCount(a)).toBe(80);
      // The restarted process's own dials applied exactly the blocks it missed, none twice.
      await waitFor(() => running(a, 'siblings').status()[0]!.applied === missed, 5000, 'the round to report');
      expect(running(a, 'siblings').status()[0]!.sent).toBe(0);
    });
  });
}
