/**
 * The gateway's firmware part: the releases and rollouts in the log (releases.ts), the inbox
 * of `gateway firmware add|rollout` (inbox.ts), the transfer (transfer.ts) over a firmware
 * link per transport started (links.ts) and the rollout runner (rollout.ts). Started after
 * the transports; without any, releases are still logged (and synced) but nothing is
 * transferred.
 */
import type { PublishPacket } from 'aedes';
import type { PartContext } from '../start-parts.js';
import type { BleTransport } from '../transports/ble.js';
import type { EmbeddedBroker } from '../transports/mqtt-broker.js';
import type { SerialTransport } from '../transports/serial.js';
import { FirmwareInbox } from './inbox.js';
import { bleFirmwareLink, type FirmwareLink, mqttFirmwareLink, serialFirmwareLink } from './links.js';
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
  transports: {
    readonly broker?: EmbeddedBroker | undefined;
    readonly serial?: SerialTransport | undefined;
    readonly ble?: BleTransport | undefined;
  },
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
  const { broker, serial, ble } = transports;
  const links: FirmwareLink[] = [];
  if (broker)
    links.push(
      mqttFirmwareLink(
        {
          // Straight to aedes (MqttBroker.publish wraps each in a promise): chunk payloads are Buffers already.
          publish: (topic, payload, done) =>
            broker.aedes.publish(
              {
                cmd: 'publish',
                topic,
                payload: Buffer.isBuffer(payload)
                  ? payload
                  : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength),
                qos: 1,
                retain: false,
                dup: false,
              },
              done,
            ),
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
        (device, err) => logger.debug({ device, err: err.message }, 'firmware publish failed'),
      ),
    );
  if (serial) links.push(serialFirmwareLink(serial));
  if (ble) links.push(bleFirmwareLink(ble));
  if (links.length === 0) return { store };
  const transfer = await new FirmwareTransfer(links, store, (id) => ctx.registry.active(id)?.publicKey, logger).start();
  // The transport of each device's last stored frame: its firmware goes the same way.
  const heard = ctx.ingest.frames$.subscribe((f) => transfer.heard(f.device, f.transport));
  ctx.parts.add('firmware routes', heard, (h) => h.unsubscribe());
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
