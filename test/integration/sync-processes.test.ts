/**
 * Three gateways as child processes syncing over loopback TCP (config `sync`):
 * devices publish to different gateways (one device to two of them), the
 * gateways converge on the same heads digest and the same deduplicated frames;
 * one gateway is SIGKILLed while the others keep ingesting and, restarted,
 * catches up with nothing lost and no duplicates; wiped (same key, empty store), it
 * restores its own chain from its siblings before authoring, so it does not fork it.
 * `gateway audit verify` is clean on every one.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { testDevice } from '../helpers/devices.js';
import {
  gatewayCli,
  type GatewayProcess,
  publishFrames as publish,
  type SiblingConfig,
  startGatewayProcess,
  stopGatewayProcess,
  writeSiblingConfigs,
} from '../helpers/process.js';

const cli = async (args: string[]): Promise<string> => (await gatewayCli(args)).stdout;

const running: GatewayProcess[] = [];
let configs: SiblingConfig[] = [];
afterEach(async () => {
  for (const g of running.splice(0)) if (g.child.exitCode === null) g.child.kill('SIGKILL');
  for (const c of configs.splice(0)) c.cleanup();
});

async function until(cond: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, 200));
  }
  return false;
}

describe('sibling sync between gateway processes', () => {
  it('3 gateways converge; one SIGKILLed and restarted catches up with nothing lost and no duplicates; wiped, it restores its own chain before authoring', async () => {
    const devices = [testDevice('s-0'), testDevice('s-1'), testDevice('s-2')];
    configs = await writeSiblingConfigs(devices);
    const keys = configs.map((c) => c.key);
    const gws = await Promise.all(configs.map((c) => startGatewayProcess(c.file)));
    running.push(...gws);

    // Device i talks to gateway i; device 0 also to gateway 1 (the same frames, heard twice).
    await Promise.all([
      publish(gws[0]!.port, devices[0]!, 1, [...Array(30).keys()]),
      publish(gws[1]!.port, devices[0]!, 1, [...Array(30).keys()]),
      publish(gws[1]!.port, devices[1]!, 1, [...Array(20).keys()]),
      publish(gws[2]!.port, devices[2]!, 1, [...Array(20).keys()]),
    ]);
    const digest = async (i: number): Promise<string> =>
      JSON.parse(await cli(['log', 'heads', '--json', '--config', configs[i]!.file])).digest as string;
    const converged = async (): Promise<boolean> => {
      const d = await Promise.all([0, 1, 2].map(digest));
      return d[0] === d[1] && d[1] === d[2];
    };
    expect(await until(converged, 20_000)).toBe(true);

    // Gateway 2 dies (SIGKILL); the others keep ingesting; it comes back and catches up.
    gws[2]!.child.kill('SIGKILL');
    await new Promise((r) => gws[2]!.child.once('exit', r));
    await publish(gws[0]!.port, devices[0]!, 2, [...Array(25).keys()]);
    await publish(gws[1]!.port, devices[1]!, 2, [...Array(25).keys()]);
    const again = await startGatewayProcess(configs[2]!.file);
    running.push(again);
    await publish(again.port, devices[2]!, 2, [...Array(10).keys()]);
    expect(await until(converged, 20_000)).toBe(true);

    // Gateway 2's SD card dies: same identity, empty store. It pulls its own chain back
    // before it authors anything, so its next block continues the chain (no equivocation).
    const before = JSON.parse(await cli(['log', 'heads', '--json', '--config', configs[2]!.file])) as {
      heads: { author: string; seq: number }[];
    };
    const ownSeq = before.heads.find((h) => h.author === keys[2])!.seq;
    again.child.kill('SIGKILL');
    await new Promise((r) => again.child.once('exit', r));
    for (const f of ['outpost.lmdb', 'outpost.lmdb-lock']) rmSync(join(configs[2]!.dataDir, f), { force: true });
    const restored = await startGatewayProcess(configs[2]!.file);
    running.push(restored);
    expect(restored.logs.some((l) => l.msg === "restored this gateway's own streams from siblings")).toBe(true);
    await publish(restored.port, devices[2]!, 3, [...Array(5).keys()]);
    expect(await until(converged, 20_000)).toBe(true);
    const after = JSON.parse(await cli(['log', 'heads', '--json', '--config', configs[0]!.file])) as {
      heads: { author: string; seq: number; hashes: string[] }[];
    };
    const own = after.heads.find((h) => h.author === keys[2])!;
    expect(own.seq).toBeGreaterThan(ownSeq);
    expect(own.hashes).toHaveLength(1);

    const total = 30 + 20 + 20 + 25 + 25 + 10 + 5;
    for (const c of configs) {
      const out = await cli(['audit', 'verify', '--config', c.file]);
      expect(out).toContain('ok: no faults');
      expect(out).toContain(`(${total} distinct)`);
      expect(out).toContain('by 3 authors');
      expect(out).toContain('; 0 equivocations');
    }
    for (const g of [gws[0]!, gws[1]!, restored]) expect(await stopGatewayProcess(g)).toBe(0);
  }, 90_000);
});
