/**
 * Two real gateways syncing their logs over TCP (gw-a dials gw-b; a sync round happens only
 * when a test calls `sync`, so not calling it is a partition) and one firmware-sim device on
 * both gateways' embedded brokers, trusting both gateway keys: each gateway hears it and can
 * command it, and the device answers over the link the command came on.
 */
import { Actuators } from '../../firmware-sim/actuators.js';
import { VirtualDevice } from '../../firmware-sim/device.js';
import { generateManifest, manifestSeed } from '../../firmware-sim/manifest.js';
import type { ActuationSettings } from '../../gateway/actuation/start.js';
import { validateConfig } from '../../gateway/config.js';
import { Gateway } from '../../gateway/gateway.js';
import { GatewayIdentity } from '../../gateway/identity.js';
import { toHex } from '../../protocols/index.js';
import type { Decision } from '../../rules/decision.js';
import { freePort, memoryLogger, running, tempDir, waitFor } from './env.js';
import { actuatorLink } from './examples.js';

export const leaseDevice = generateManifest({ devices: 1, prefix: 'light', model: 'env-1' }).devices[0]!;

/** Starts a gateway that knows the lease device; its stop runs once, and is registered in `closers`. */
export async function leaseGateway(
  closers: (() => unknown)[],
  id: string,
  dir: string,
  sync: Record<string, unknown>,
  actuation: ActuationSettings,
): Promise<Gateway> {
  const config = validateConfig({
    gateway: { id, dataDir: dir },
    mqtt: { port: 0 },
    devices: [{ id: leaseDevice.id, publicKey: leaseDevice.publicKey }],
    simulate: { devices: 0 },
    api: { enabled: false },
    sync: { enabled: true, host: '127.0.0.1', intervalSeconds: 3600, ...sync },
  });
  const gw = await Gateway.start(config, { logger: memoryLogger().log, simulate: false, actuation });
  let stopped = false;
  const stop = gw.stop.bind(gw);
  gw.stop = async () => {
    if (stopped) return;
    stopped = true;
    await stop();
  };
  closers.push(() => gw.stop());
  return gw;
}

/** A `phase` command decision, as a rule would make it. */
export const phase = (device: string, value: string, ttlMs = 10_000): Decision => ({
  rule: 'phase',
  ruleVersion: 't',
  at: Date.now(),
  inputs: [],
  reason: 'test',
  action: { kind: 'command', command: { device, actuator: 'phase', value, ttlMs } },
});

export interface LeasePair {
  readonly a: Gateway;
  readonly b: Gateway;
  readonly dirs: readonly [{ dir: string; key: Uint8Array }, { dir: string; key: Uint8Array }];
  readonly device: VirtualDevice;
  readonly actuators: Actuators;
  /** One sync round, both logs durable after it. */
  sync(): Promise<void>;
  /** The device sends a reading to both gateways and waits until both stored it. */
  heard(): Promise<void>;
  /** The device sends a reading to both gateways (not waited for). */
  send(): void;
}

export async function leasePair(
  closers: (() => unknown)[],
  prefix: string,
  actuation: ActuationSettings,
): Promise<LeasePair> {
  const dev = leaseDevice;
  const dirs = ['gw-a', 'gw-b'].map((id) => {
    const t = tempDir(`outpost-${prefix}-${id}-`);
    closers.push(t.cleanup);
    return { dir: t.dir, key: GatewayIdentity.loadOrCreate(id, t.dir).publicKey };
  }) as [{ dir: string; key: Uint8Array }, { dir: string; key: Uint8Array }];
  const portB = await freePort();
  const b = await leaseGateway(
    closers,
    'gw-b',
    dirs[1].dir,
    { port: portB, peers: [{ id: 'gw-a', publicKey: toHex(dirs[0].key) }] },
    actuation,
  );
  const a = await leaseGateway(
    closers,
    'gw-a',
    dirs[0].dir,
    { port: 0, peers: [{ id: 'gw-b', publicKey: toHex(dirs[1].key), url: `tcp://127.0.0.1:${portB}` }] },
    actuation,
  );
  const device = new VirtualDevice({ id: dev.id, seed: manifestSeed(dev), model: dev.model, signer: 'node' });
  const actuators = new Actuators({
    device: dev.id,
    gateways: [
      { id: 'gw-a', publicKey: dirs[0].key },
      { id: 'gw-b', publicKey: dirs[1].key },
    ],
    initial: { phase: 'red' },
  });
  const links = [a, b].map((gw) => {
    const link = actuatorLink(device, actuators, `mqtt://127.0.0.1:${running(gw, 'broker').port}`);
    closers.push(() => link.stop());
    return link;
  });
  await waitFor(() => links.every((l) => l.connected), 15_000, 'device on both brokers');
  const send = () => {
    const f = device.nextFrame();
    for (const l of links) l.send(f);
    return f;
  };
  return {
    a,
    b,
    dirs,
    device,
    actuators,
    send: () => void send(),
    sync: async () => {
      await running(a, 'siblings').round(false);
      await Promise.all([a.blockLog.durable(), b.blockLog.durable()]);
    },
    heard: async () => {
      const sent = Date.now();
      const f = send();
      // Stored, and seen by actuation (which learns of it just after the frames index does).
      await waitFor(
        () =>
          [a, b].every(
            (gw) =>
              gw.frames.get(dev.id, f.boot, f.seq) !== undefined &&
              (gw.actuation.actuation.lastHeard(dev.id) ?? 0) >= sent,
          ),
        15_000,
        'frame stored and heard on both',
      );
    },
  };
}
