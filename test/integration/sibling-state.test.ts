/**
 * Each sibling's sync state as `Siblings` keeps it (gateway/sync/peer-state.ts), over real TCP
 * links between block logs on their own lmdb stores: lag counted in blocks authored since the
 * last complete exchange and back to 0 after the next; an exchange answered for a sibling that
 * only dials us makes it connected too; a sibling that does not list us refuses, and that is
 * counted by reason; a round asked for while one runs is the next round.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { validateConfig } from '../../gateway/config.js';
import { publicKeyFromSeed } from '../../gateway/crypto/ed25519.js';
import { Siblings } from '../../gateway/sync/siblings.js';
import { type FrameEntry, toHex } from '../../protocols/index.js';
import { testDevice } from '../helpers/devices.js';
import { memoryLogger, waitFor } from '../helpers/env.js';
import { logNode } from '../helpers/log-node.js';

const dev = testDevice('dev-state');
const closers: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

const frames = (boot: number, n: number): FrameEntry[] =>
  Array.from({ length: n }, (_, i) => ({
    frame: dev.frame(boot, i),
    rxTime: 1_760_000_000_000 + i,
    transport: 'mqtt',
  }));

type PeerConf = { id: string; publicKey: string; host?: string; port?: number };

async function sibling(seed: Uint8Array, peers: PeerConf[], trust: Uint8Array[]) {
  const node = logNode(seed, trust, [dev], closers);
  const cfg = validateConfig({
    gateway: { id: 'x' },
    // A long interval: the test runs the rounds (the first runs at start).
    sync: { enabled: true, host: '127.0.0.1', port: 0, encrypted: false, intervalSeconds: 3600, peers },
  }).sync;
  const s = await Siblings.start(cfg, node.log, node.identity, memoryLogger().log);
  closers.push(() => s.stop());
  return { ...node, s };
}

describe('sibling state', () => {
  const [sa, sb, sc] = [randomBytes(32), randomBytes(32), randomBytes(32)];
  const [ka, kb] = [sa, sb].map(publicKeyFromSeed) as [Uint8Array, Uint8Array];

  it('counts the blocks a sibling lacks since the last exchange, answered exchanges count, refusals by reason', async () => {
    // b knows a (a dials it; b never dials a) and not c.
    const b = await sibling(sb, [{ id: 'gw-a', publicKey: toHex(ka) }], [ka]);
    const at = { host: '127.0.0.1', port: b.s.port };
    const a = await sibling(sa, [{ id: 'gw-b', publicKey: toHex(kb), ...at }], [kb]);
    const c = await sibling(sc, [{ id: 'gw-b', publicKey: toHex(kb), ...at }], [kb]);

    // The start's round: a converges with b (nothing to send yet), c is refused.
    await waitFor(() => a.s.state()[0]!.lastExchangeAt !== null, 10_000, 'first exchange');
    expect(a.s.state()[0]).toMatchObject({
      id: 'gw-b',
      connected: true,
      dials: true,
      transport: 'tcp',
      behind: { blocks: 0, seconds: 0 },
      refusals: {},
      lastError: null,
    });

    // a authors 3 frames blocks (and the device's enrolment block before them): b lacks them
    // until the next exchange.
    expect(a.log.blockCount()).toBe(0);
    for (let k = 0; k < 3; k++) a.log.appendFrames(frames(1 + k, 10));
    await a.log.durable();
    const authored = a.log.blockCount();
    expect(authored).toBeGreaterThanOrEqual(3);
    await waitFor(() => a.s.state()[0]!.behind?.blocks === authored, 5000, 'lag of the blocks authored');
    // A round (this one, or the start's second one still in flight) sends them.
    await waitFor(
      async () => {
        await a.s.round(false);
        return a.s.state()[0]!.behind?.blocks === 0;
      },
      10_000,
      'caught up',
    );
    expect(a.s.state()[0]).toMatchObject({ connected: true, behind: { blocks: 0, seconds: 0 }, sent: authored });

    // b answered: a is connected to it over TCP though b never dials it, and a lacks none of
    // what b holds (a's own blocks do not count). Recorded once b's writes are durable.
    await waitFor(() => b.s.state()[0]!.applied === authored, 5000, 'b to record the exchange');
    expect(b.s.state()[0]).toMatchObject({
      id: 'gw-a',
      connected: true,
      dials: false,
      transport: 'tcp',
      applied: authored,
      behind: { blocks: 0, seconds: 0 },
    });
    expect(b.s.status()[0]).toMatchObject({ id: 'gw-a', applied: authored });

    // c is not b's sibling: refused by the signed challenge, counted, not connected. Its start
    // dials twice (restoring its own streams first, then the first round); one more round here.
    await waitFor(() => c.s.state()[0]!.refusals['link/refused'] === 2, 10_000, 'the start rounds refused');
    await c.s.round(false);
    const refused = c.s.state()[0]!;
    expect(refused).toMatchObject({ connected: false, lastExchangeAt: null, behind: null });
    expect(refused.lastError).toMatch(/refused: unknown gateway/);
    expect(refused.refusals).toEqual({ 'link/refused': 3 });
    expect(c.s.status()[0]!.lastError).toMatch(/unknown gateway/);

    // A round asked for while one runs is the next round, not a no-op (its caller would see an
    // exchange that began before its change); calls meanwhile share that next round.
    await Promise.all([c.s.round(false), c.s.round(false)]);
    expect(c.s.state()[0]!.refusals).toEqual({ 'link/refused': 5 });
    await Promise.all([c.s.round(false), c.s.round(false), c.s.round(false)]);
    expect(c.s.state()[0]!.refusals).toEqual({ 'link/refused': 7 });
  });
});
