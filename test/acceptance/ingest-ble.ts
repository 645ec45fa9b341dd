/**
 * The ingest acceptance suite's adapter for BLE: firmware-sim's simulated radio (noble's websocket
 * binding protocol) with one Nordic UART peripheral per device, and the gateway's BLE
 * transport running the real noble central against it. Frame-acks are written to RX, signed
 * by the gateway and checked by the device. Going away is the device out of radio range.
 */
import { onTestFinished } from 'vitest';
import { BleRadio } from '../../firmware-sim/transports/ble-radio.js';
import { encodeSerialFrame } from '../../protocols/index.js';
import { running, startScopedGateway, waitFor } from '../helpers/env.js';
import type { AttachedDevice, IngestAdapter } from './ingest.suite.js';

export const bleIngest: IngestAdapter = {
  transport: 'ble',
  async start(fleet) {
    const radio = await BleRadio.start({ advertiseIntervalMs: 50 });
    onTestFinished(() => radio.close());
    const { gw, lines } = await startScopedGateway([...fleet.enrolment], {
      ble: { enabled: true, radio: radio.url, connectTimeoutMs: 2000, backoffMinMs: 50, backoffMaxMs: 500 },
    });
    const ble = running(gw, 'ble');
    const peripherals = fleet.devices.map((device) =>
      radio.add(device, {
        gatewayPublicKey: gw.identity.publicKey,
        gatewayId: gw.config.gateway.id,
        resendAfterMs: 500,
        mtu: 23,
      }),
    );
    const subscribed = (id: string): boolean => ble.links.get(id)?.state === 'subscribed';
    await waitFor(() => fleet.devices.every((d) => subscribed(d.id)), 15_000, 'every peripheral subscribed');
    const devices = peripherals.map(
      (p): AttachedDevice => ({
        device: p.device,
        send: (f) => p.send(f),
        sendRaw: async (bytes) => p.sendRaw(encodeSerialFrame(bytes)),
        drain: (ms) => p.drain(ms),
        acks: () => ({ settled: p.stats.acked, refused: p.stats.badDownlink }),
        async goAway() {
          radio.setInRange(p, false);
          await waitFor(() => !p.subscribed, 5000, `${p.device.id} out of range`);
        },
        async comeBack() {
          radio.setInRange(p, true);
          await waitFor(() => subscribed(p.device.id) && p.subscribed, 15_000, `${p.device.id} subscribed again`);
        },
      }),
    );
    return { gw, lines, devices };
  },
};
