/**
 * MQTT sink: republishes each frame to a broker (Mosquitto, EMQX, HiveMQ) over TLS with a
 * username and password, QoS 1, on a topic from a template; the payload is the signed frame
 * (the COSE_Sign1 bytes) or JSON with the decoded records and the frame in hex. A batch is
 * delivered when every publish has its PUBACK. A batch that fails is sent again whole, so
 * a subscriber may see a message twice around a broker restart: every message carries its
 * (device, boot, seq), the key a subscriber dedupes on (exactly once in effect). The session
 * is dropped on failure, so nothing is kept in memory between attempts: the log is the buffer.
 * Also a notifier: alerts go to `alertTopic`.
 */
import type { MqttClient } from 'mqtt';
import { toHex } from '../../../protocols/index.js';
import type { MqttSinkConfig } from '../config.js';
import { frameRecords } from '../records.js';
import type { ExportFrame } from '../source.js';
import { policyStream } from '../../log/block-log.js';
import { mqttLoginOptions, readSecret } from '../../outbound.js';
import { type Alert, type DataSink, fillTopic, type GatewayName, type Notifier } from './types.js';

const PUBLISH_TIMEOUT_MS = 15_000;

export class MqttSink implements DataSink, Notifier {
  readonly name: string;
  private client?: Promise<MqttClient>;
  private readonly password?: string;

  constructor(
    private readonly cfg: MqttSinkConfig,
    private readonly gatewayName: GatewayName,
    private readonly gatewayId: string,
  ) {
    this.name = cfg.name;
    this.password = readSecret(cfg.passwordFile);
  }

  private connect(): Promise<MqttClient> {
    // mqtt.js is loaded with the first connection: a gateway without this sink never holds it.
    this.client ??= import('mqtt')
      .then(({ default: mqtt }) =>
        mqtt.connectAsync(this.cfg.url, {
          ...mqttLoginOptions(this.cfg, this.password),
          clientId: this.cfg.clientId ?? `outpost-export-${this.gatewayId}-${this.cfg.name}`,
          reconnectPeriod: 0,
          connectTimeout: 10_000,
          protocolVersion: 4,
        }),
      )
      .catch((e: unknown) => {
        this.client = undefined;
        throw e;
      });
    return this.client;
  }

  private async drop(): Promise<void> {
    const c = this.client;
    this.client = undefined;
    if (c) await c.then((x) => x.endAsync(true)).catch(() => {});
  }

  private async publishAll(msgs: readonly [string, Buffer | string][]): Promise<void> {
    const c = await this.connect();
    if (!c.connected) {
      await this.drop();
      throw new Error('mqtt sink: not connected');
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('mqtt sink: no PUBACK in time')), PUBLISH_TIMEOUT_MS);
    });
    let onClose: (() => void) | undefined;
    const lost = new Promise<never>((_, reject) => {
      onClose = () => reject(new Error('mqtt sink: connection closed'));
      c.once('close', onClose);
    });
    try {
      await Promise.race([Promise.all(msgs.map(([t, p]) => c.publishAsync(t, p, { qos: 1 }))), timeout, lost]);
    } catch (e) {
      await this.drop();
      throw e;
    } finally {
      clearTimeout(timer);
      if (onClose) c.off('close', onClose);
    }
  }

  deliver(frames: readonly ExportFrame[]): Promise<void> {
    return this.publishAll(
      frames.map((f) => {
        const gateway = this.gatewayName(f.author);
        const topic = fillTopic(this.cfg.topic, {
          gateway,
          device: f.device,
          policy: policyStream(f.policy),
          boot: f.boot,
          seq: f.seq,
        });
        if (this.cfg.payload === 'signed') return [topic, Buffer.from(f.frame)];
        return [
          topic,
          JSON.stringify({
            device: f.device,
            boot: f.boot,
            seq: f.seq,
            rxTime: f.rxTime,
            heardBy: gateway,
            policy: f.policy,
            records: frameRecords(f).map(({ dataValue, ...r }) => ({
              ...r,
              ...(dataValue && { dataValue: toHex(dataValue) }),
            })),
            frame: toHex(f.frame),
          }),
        ];
      }),
    );
  }

  notify(alert: Alert): Promise<void> {
    return this.publishAll([[fillTopic(this.cfg.alertTopic, { gateway: alert.gateway }), JSON.stringify(alert)]]);
  }

  close(): Promise<void> {
    return this.drop();
  }
}
