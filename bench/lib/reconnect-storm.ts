/**
 * The reconnect storm of bench/net-security.ts: an in-process gateway with a TLS listener, enrolled
 * devices in load-generator processes, all of them reconnecting at once.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { startTestGateway, tempDir } from '../../test/helpers/env.js';
import { generator } from './generator.js';

const GW = 'gw-bench';
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export interface StormPhase {
  ms: number;
  cpuMs: number;
  resumed: number;
  connected: number;
}

/**
 * `devices` enrolled devices over TLS with tokens, split over `workers` generator processes (each
 * device from its own loopback address): a first connect, then reconnects of all at once in ABBA
 * order, full handshakes (F) and TLS session resumption (R): F R R F … for `rounds`. `profile`:
 * CPU profiles of the gateway's main thread during the last reconnect of each kind,
 * `{profile}.full.cpuprofile` and `{profile}.resumed.cpuprofile`.
 */
export async function reconnectStorm(devices: number, workers: number, rounds: number, profile?: string) {
  const tmp = tempDir('outpost-bench-net-');
  const { gw } = await startTestGateway(tmp.dir, [], {
    gateway: { id: GW, dataDir: tmp.dir },
    mqtt: { port: 0, tls: { enabled: true, host: '127.0.0.1', port: 0 } },
  });
  const per = Math.ceil(devices / workers);
  const gens = Array.from({ length: workers }, (_, w) =>
    generator([
      ...['--url', `mqtts://127.0.0.1:${gw.broker!.portOf(1)}`, '--ca', gw.tls!.certFile, '--gateway-id', GW],
      ...['--prefix', `storm${w}`, '--devices', String(Math.min(per, devices - w * per)), '--frames', '1'],
      ...['--spread', '--first', String(w * per)],
    ]),
  );
  for (const g of gens) {
    const { keys } = await g.ask<{ keys: { id: string; publicKey: string }[] }>();
    for (const k of keys) await gw.registry.enroll(k);
  }
  const all = async (cmd: string, profileTo?: string): Promise<StormPhase> => {
    const session = profileTo ? new Session() : undefined;
    if (session) {
      session.connect();
      await session.post('Profiler.enable');
      await session.post('Profiler.start');
    }
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const r = await Promise.all(gens.map((g) => g.ask<{ connected: number; resumed: number }>(cmd)));
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    if (session) {
      const { profile } = await session.post('Profiler.stop');
      writeFileSync(profileTo!, JSON.stringify(profile));
      session.disconnect();
    }
    for (const g of gens) await g.ask('drop');
    return {
      ms,
      cpuMs: (cpu.user + cpu.system) / 1000,
      connected: r.reduce((n, x) => n + x.connected, 0),
      resumed: r.reduce((n, x) => n + x.resumed, 0),
    };
  };
  const first = await all('connect');
  const phases = { full: [] as StormPhase[], resumed: [] as StormPhase[] };
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? (['full', 'resumed'] as const) : (['resumed', 'full'] as const);
    for (const k of order) {
      const last = profile !== undefined && r >= rounds - 2;
      phases[k].push(
        await all(k === 'full' ? 'connect' : 'connect resume', last ? `${profile}.${k}.cpuprofile` : undefined),
      );
    }
  }
  for (const g of gens) g.exit();
  await gw.stop();
  tmp.cleanup();
  const med = (k: 'full' | 'resumed', f: keyof StormPhase) => median(phases[k].map((p) => p[f]));
  const pick = (k: 'full' | 'resumed'): StormPhase => ({
    ms: med(k, 'ms'),
    cpuMs: med(k, 'cpuMs'),
    resumed: Math.min(...phases[k].map((p) => p.resumed)),
    connected: Math.min(...phases[k].map((p) => p.connected)),
  });
  return { first, full: pick('full'), resumed: pick('resumed') };
}
