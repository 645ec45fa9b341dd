/**
 * Three gateways as child processes syncing over loopback TCP (config `sync`):
 * devices publish to different gateways (one device to two of them), the
 * gateways converge on the same heads digest and the same deduplicated frames;
 * one gateway is SIGKILLed while the others keep ingesting and, restarted,
 * catches up with nothing lost and no duplicates; wiped (same key, empty store), it
 * restores its own chain from its siblings before authoring, so it does not fork it; one is
 * frozen (SIGSTOP) while another ingests, then thawed. Afterwards `gateway log query` prints
 * the same merged history on every gateway, each (device, boot, seq) once with the gateway
 * that heard it, and after a gateway is killed for good its devices' history is still
 * queryable on the survivors. `gateway audit verify` is clean on every one.
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
  it('3 gateways converge through a SIGSTOP partition and a SIGKILL-restart; log query shows the same merged history everywhere; wiped, one restores its chain before authoring; killed for good, its devices stay queryable', async () => {
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
    expect(await until(converged, 60_000)).toBe(true);

    // A partition: gateway 1 frozen (SIGSTOP) while gateway 0 ingests, then thawed (SIGCONT).
    gws[1]!.child.kill('SIGSTOP');
    await publish(gws[0]!.port, devices[1]!, 4, [...Array(15).keys()]);
    gws[1]!.child.kill('SIGCONT');
    expect(await until(converged, 60_000)).toBe(true);

    // Gateway 2 dies (SIGKILL); the others keep ingesting; it comes back and catches up.
    gws[2]!.child.kill('SIGKILL');
    await new Promise((r) => gws[2]!.child.once('exit', r));
    await publish(gws[0]!.port, devices[0]!, 2, [...Array(25).keys()]);
    await publish(gws[1]!.port, devices[1]!, 2, [...Array(25).keys()]);
    const again = await startGatewayProcess(configs[2]!.file);
    running.push(again);
    await publish(again.port, devices[2]!, 2, [...Array(10).keys()]);
    expect(await until(converged, 60_000)).toBe(true);

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
    expect(await until(converged, 60_000)).toBe(true);
    const after = JSON.parse(await cli(['log', 'heads', '--json', '--config', configs[0]!.file])) as {
      heads: { author: string; seq: number; hashes: string[] }[];
    };
    const own = after.heads.find((h) => h.author === keys[2])!;
    expect(own.seq).toBeGreaterThan(ownSeq);
    expect(own.hashes).toHaveLength(1);

    const total = 30 + 20 + 20 + 15 + 25 + 25 + 10 + 5;
    // The merged history: every gateway's `log query` prints the same (device, boot, seq), each
    // once — whichever gateway heard it — with the gateway that heard it.
    const query = async (
      i: number,
      ...args: string[]
    ): Promise<{ device: string; boot: number; seq: number; heardBy: string }[]> =>
      (await cli(['log', 'query', '--config', configs[i]!.file, ...args]))
        .trim()
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l));
    const ids = (rows: { device: string; boot: number; seq: number }[]): string[] =>
      rows.map((r) => `${r.device}/${r.boot}/${r.seq}`).sort();
    const merged = await Promise.all([0, 1, 2].map((i) => query(i)));
    for (const rows of merged) {
      expect(rows).toHaveLength(total);
      expect(new Set(ids(rows)).size).toBe(total);
      expect(ids(rows)).toEqual(ids(merged[0]!));
    }
    // gw-2's devices as gw-0 sees them: heard by gw-2.
    expect(merged[0]!.filter((r) => r.device === 's-2').every((r) => r.heardBy === 'gw-2')).toBe(true);
    // Each gateway's own answer (--local) is what it heard itself: together they cover the site.
    const locals = await Promise.all([0, 1, 2].map((i) => query(i, '--local')));
    expect(new Set(locals.flatMap(ids)).size).toBe(total);
    for (const c of configs) {
      const out = await cli(['audit', 'verify', '--config', c.file]);
      expect(out).toContain('ok: no faults');
      expect(out).toContain(`(${total} distinct)`);
      expect(out).toContain('by 3 authors');
      expect(out).toContain('; 0 equivocations');
    }
    // Gateway 2 killed for good: its devices' history stays queryable on the survivors.
    restored.child.kill('SIGKILL');
    await new Promise((r) => restored.child.once('exit', r));
    for (const i of [0, 1]) {
      const s2 = await query(i, '--device', 's-2');
      expect(s2).toHaveLength(20 + 10 + 5);
      expect(new Set(s2.map((r) => r.heardBy))).toEqual(new Set(['gw-2']));
      expect(await query(i, '--heard-by', 'gw-2', '--device', 's-2')).toHaveLength(35);
    }
    for (const g of [gws[0]!, gws[1]!]) expect(await stopGatewayProcess(g)).toBe(0);
  }, 300_000);
});
