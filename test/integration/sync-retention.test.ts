/**
 * Retention between real gateways ("pruned blocks are not pulled back by sync"):
 * gateway A keeps its blocks 1 s (`log.retention`), gateway B forever. They sync over a real
 * TCP link; A's retention timer prunes its old blocks and B prunes them alike on the next
 * exchange (the mark travels in the chain); a third gateway C started empty later gets the
 * stream from the mark over MQTT through A's embedded broker; after more rounds nothing
 * pruned comes back anywhere, and all three print the same heads digest and frames view.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Gateway } from '../../gateway/gateway.js';
import { GatewayIdentity } from '../../gateway/identity.js';
import { auditLog } from '../../gateway/log/audit.js';
import { toHex } from '../../protocols/index.js';
import { testDevice } from '../helpers/devices.js';
import { running, startTestGateway, tempDir, waitFor } from '../helpers/env.js';

const dev = testDevice('dev-ret');
const devices = [{ id: dev.id, publicKey: dev.publicKeyHex }];
const closers: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

function dataDir(id: string): { dir: string; key: Uint8Array; hex: string } {
  const { dir, cleanup } = tempDir(`outpost-ret-${id}-`);
  closers.push(cleanup);
  const key = GatewayIdentity.loadOrCreate(id, dir).publicKey;
  return { dir, key, hex: toHex(key) };
}

async function gateway(
  id: string,
  d: { dir: string },
  extra: Record<string, unknown>,
  sync: Record<string, unknown>,
): Promise<Gateway> {
  const { gw } = await startTestGateway(d.dir, devices, {
    gateway: { id, dataDir: d.dir },
    ...extra,
    sync: { enabled: true, host: '127.0.0.1', port: 0, intervalSeconds: 3600, ...sync },
  });
  closers.push(() => gw.stop());
  return gw;
}

const seqs = (gw: Gateway): number[] => [...gw.blockLog.frameView()].map((v) => v.seq).sort((a, b) => a - b);
const view = (gw: Gateway): string[] =>
  [...gw.blockLog.frameView()].map((v) => `${v.device}/${v.seq}@${v.block}:${v.index}`);

async function converge(from: Gateway, to: Gateway): Promise<void> {
  await waitFor(
    async () => {
      await running(from, 'siblings').round(false);
      await Promise.all([from.blockLog.settled(), to.blockLog.settled()]);
      return from.blockLog.headsDigest() === to.blockLog.headsDigest();
    },
    15_000,
    'heads digests equal',
  );
}

describe('retention between gateways', () => {
  it('a pruning gateway and a keep-forever sibling converge on its mark over TCP; a late sibling starts at the mark over MQTT; nothing pruned comes back', async () => {
    const [da, db, dc] = [dataDir('gw-a'), dataDir('gw-b'), dataDir('gw-c')];
    const b = await gateway(
      'gw-b',
      db,
      {},
      {
        peers: [
          { id: 'gw-a', publicKey: da.hex },
          { id: 'gw-c', publicKey: dc.hex },
        ],
      },
    );
    const a = await gateway(
      'gw-a',
      da,
      { log: { retention: { default: '1s' } } },
      {
        peers: [
          { id: 'gw-b', publicKey: db.hex, url: `tcp://127.0.0.1:${running(b, 'siblings').port}` },
          { id: 'gw-c', publicKey: dc.hex },
        ],
      },
    );
    for (let i = 0; i < 4; i++)
      expect((await a.ingest.submit(dev.frame(1, i), { transport: 'mqtt' })).status).toBe('stored');
    await converge(a, b);
    expect(seqs(b)).toEqual([0, 1, 2, 3]);
    await new Promise((r) => setTimeout(r, 1100));
    expect((await a.ingest.submit(dev.frame(1, 4), { transport: 'mqtt' })).status).toBe('stored');
    a.retention.tick(); // what the 30 s timer does
    await a.blockLog.settled();
    const mark = a.blockLog.mark(a.blockLog.author, 'default');
    expect(mark).toBeGreaterThan(0);
    expect(seqs(a)).toEqual([4]);
    // b keeps forever, but a's blocks follow a's mark: b prunes them on the next exchange.
    await converge(a, b);
    expect(b.blockLog.mark(a.blockLog.author, 'default')).toBe(mark);
    expect(seqs(b)).toEqual([4]);
    expect(view(b)).toEqual(view(a));
    // c starts empty and dials a through a's embedded aedes.
    const c = await gateway(
      'gw-c',
      dc,
      {},
      {
        peers: [
          { id: 'gw-a', publicKey: da.hex, url: `mqtt://127.0.0.1:${running(a, 'broker').port}` },
          { id: 'gw-b', publicKey: db.hex, url: `tcp://127.0.0.1:${running(b, 'siblings').port}` },
        ],
      },
    );
    await converge(c, a);
    expect(c.blockLog.mark(a.blockLog.author, 'default')).toBe(mark);
    // More rounds in every direction: no block below the mark returns anywhere.
    for (let r = 0; r < 2; r++) {
      await running(c, 'siblings').round(false);
      await running(a, 'siblings').round(false);
    }
    await Promise.all([a, b, c].map((g) => g.blockLog.settled()));
    for (const g of [a, b, c]) {
      expect(g.blockLog.headsDigest()).toBe(a.blockLog.headsDigest());
      expect(view(g)).toEqual(view(a));
      expect(
        g.blockLog
          .streamBlocks(a.blockLog.author, 'default')
          .filter(([s, h]) => s < mark && g.blockLog.lookup(h)!.kind === 'frames'),
      ).toEqual([]);
      expect(auditLog(g.blockLog).faults).toEqual([]);
    }
    expect([...a.frames.query({})].map((f) => f.seq)).toEqual([4]); // a's own stored frames went with its blocks
  }, 60_000);
});
