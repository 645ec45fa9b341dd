/**
 * An updatable device's MQTT link: its own session (client id `<id>.fw`, so it never takes
 * over the frames link's session), logged in as the device with a fresh connect token each
 * time; receives on its `fw-down` topic and reports on `fw-up`. On every (re)connect the
 * device says where it is, so a transfer cut by a disconnect resumes from its offset.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { encodeConnectToken, topics } from '../protocols/index.js';
import { createSigner } from './crypto.js';
import { UpdatableDevice, type UpdatableDeviceOptions } from './update.js';

export interface UpdateLinkOptions extends Omit<UpdatableDeviceOptions, 'send'> {
  readonly brokerUrl: string;
  readonly gatewayId: string;
  readonly reconnectPeriodMs?: number;
}

export class UpdateLink {
  readonly device: UpdatableDevice;
  private client?: MqttClient;
  private lastToken = 0;
  private readonly sign: ReturnType<typeof createSigner>;

  constructor(private readonly o: UpdateLinkOptions) {
    this.sign = createSigner(o.seed);
    this.device = new UpdatableDevice({
      ...o,
      send: (report) => {
        if (this.client?.connected) this.client.publish(topics.fwUp(o.id), Buffer.from(report), { qos: 1 });
      },
    });
  }

  private token(): string {
    this.lastToken = Math.max(this.lastToken + 1, Date.now());
    return encodeConnectToken({ subject: this.o.id, audience: this.o.gatewayId, time: this.lastToken }, this.sign);
  }

  start(): this {
    this.device.boot();
    const client = mqtt.connect(this.o.brokerUrl, {
      clientId: `${this.o.id}.fw`,
      username: this.o.id,
      password: this.token(),
      clean: true,
      reconnectPeriod: this.o.reconnectPeriodMs ?? 500,
      connectTimeout: 5000,
      reconnectOnConnackError: true,
      resubscribe: false,
    });
    this.client = client;
    client.on('reconnect', () => (client.options.password = this.token()));
    client.on('connect', () => {
      // No Nagle: a report sent right after the acks of a window's chunks would otherwise wait
      // for the gateway's delayed ACK (~40 ms a round), which bounded the transfer.
      (client.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
      client.subscribe(topics.fwDown(this.o.id), { qos: 1 }, (err) => {
        if (!err) this.device.connected();
      });
    });
    client.on('message', (_topic, payload) => this.device.receive(new Uint8Array(payload)));
    client.on('error', () => {});
    return this;
  }

  async stop(): Promise<void> {
    this.device.stop();
    await this.client?.endAsync(true);
  }
}
