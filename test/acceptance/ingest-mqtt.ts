/**
 * The ingest acceptance suite's adapter for MQTT: the gateway's embedded aedes broker on a real TCP port,
 * each device a firmware-sim `MqttDeviceLink` (its own client, QoS 1; a frame leaves the device
 * only on its PUBACK, which the gateway sends once the frame is durable).
 */
import { onTestFinished } from 'vitest';
import { MqttDeviceLink } from '../../firmware-sim/transports/mqtt.js';
import { startScopedGateway, waitFor } from '../helpers/env.js';
import type { AttachedDevice, IngestAdapter } from './ingest.suite.js';

export const mqttIngest: IngestAdapter = {
  transport: 'mqtt',
  async start(fleet) {
    const { gw, lines, url } = await startScopedGateway([...fleet.enrolment]);
    const links = fleet.devices.map((device) => {
      const link = new MqttDeviceLink(device, { brokerUrl: url, reconnectPeriodMs: 200 });
      link.start();
      onTestFinished(() => link.stop());
      return link;
    });
    await waitFor(() => links.every((l) => l.connected), 10_000, 'every device connected');
    const devices = links.map(({ device }, i): AttachedDevice => {
      const link = links[i]!;
      return {
        device,
        send: (f) => link.send(f),
        sendRaw: (bytes) => link.publishRaw(bytes),
        async drain(ms) {
          const end = Date.now() + ms;
          if (!(await link.drain(ms))) return false;
          return waitFor(() => device.pendingCount === 0, Math.max(0, end - Date.now())).then(
            () => true,
            () => false,
          );
        },
        // A PUBACK carries no signature to check: the device trusts its session with the broker.
        acks: () => ({ settled: link.stats.acked, refused: 0 }),
        async goAway() {
          link.dropConnection();
          await waitFor(() => !link.connected, 5000, `${device.id} disconnected`);
        },
        comeBack: () => waitFor(() => link.connected, 10_000, `${device.id} reconnected`),
      };
    });
    return { gw, lines, devices };
  },
};
