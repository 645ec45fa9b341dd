/**
 * The gateway's firmware part: the releases and rollouts in the log (releases.ts), the inbox
 * of `gateway firmware add|rollout` (inbox.ts), the MQTT transfer (transfer.ts) and the
 * rollout runner (rollout.ts). Started after the MQTT broker; without one, releases are still
 * logged (and synced) but nothing is transferred.
 */
import type { PublishPacket } from 'aedes';
import type { PartContext } from '../start-parts.js';
import type { EmbeddedBroker } from '../transports/mqtt-broker.js';
import { FirmwareInbox } from './inbox.js';
import { FirmwareStore } from './releases.js';
import { RolloutRunner } from './rollout.js';
import { FirmwareTransfer } from './transfer.js';

export interface GatewayFirmware {
  readonly store: FirmwareStore;
  readonly transfer?: FirmwareTransfer;
}

/** Timings a test may shorten. */
export interface FirmwareSettings {
  readonly reofferMs?: number;
  readonly tickMs?: number;
}

export async function startFirmware(
  ctx: PartContext,
  broker: EmbeddedBroker | undefined,
  dataDir: string,
  settings: FirmwareSettings = {},
): Promise<GatewayFirmware> {
  const set = ctx.policies.set;
  const releaseKeys = set.releaseKeys ?? new Map<string, Uint8Array>();
  const def = set.policies.get(set.defaultPolicy);
  const policy = def ? `${def.name}@${def.version}` : set.defaultPolicy;
  const inCommit = (a: () => void): void => ctx.ingest.appendInCommit(a);
  const logger = ctx.log.child({ component: 'firmware' });
  const store = ctx.parts.add(
    'firmware store',
    new FirmwareStore(ctx.blockLog, [...releaseKeys.values()]).follow(),
    (s) => s.close(),
  );
  ctx.parts.add(
    'firmware inbox',
    new FirmwareInbox({ dataDir, log: ctx.blockLog, store, releaseKeys, policy, inCommit, logger }).start(),
    (i) => i.stop(),
  );
  if (!broker) return { store };
  const transfer = await new FirmwareTransfer(
    {
      publish: (topic, payload, opts) => broker.publish(topic, payload, opts),
      subscribe: (filter, fn) =>
        new Promise<void>((resolve) =>
          broker.aedes.subscribe(
            filter,
            (packet: PublishPacket, cb: () => void) => {
              fn(packet.topic, packet.payload as Uint8Array);
              cb();
            },
            () => resolve(),
          ),
        ),
    },
    store,
    (id) => ctx.registry.active(id)?.publicKey,
    logger,
  ).start();
  ctx.parts.add(
    'firmware rollouts',
    new RolloutRunner({
      log: ctx.blockLog,
      store,
      transfer,
      policy,
      inCommit,
      logger,
      ...(settings.reofferMs !== undefined && { reofferMs: settings.reofferMs }),
    }).start(settings.tickMs),
    (r) => r.stop(),
  );
  return { store, transfer };
}
