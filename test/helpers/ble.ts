/** A simulated BLE radio with virtual devices, and a gateway whose BLE transport (real noble) uses it. */
import { join } from 'node:path';
import { VirtualDevice } from '../../firmware-sim/device.js';
import { generateManifest, manifestSeed } from '../../firmware-sim/manifest.js';
import { BleRadio, type BleRadioOptions } from '../../firmware-sim/transports/ble-radio.js';
import type { SimPeripheral, SimPeripheralOptions } from '../../firmware-sim/transports/ble-peripheral.js';
import type { Gateway } from '../../gateway/gateway.js';
import { startTestGateway, tempDir } from './env.js';

export interface BleRig {
  gw: Gateway;
  radio: BleRadio;
  lines: Record<string, unknown>[];
  peripherals: SimPeripheral[];
  devices: VirtualDevice[];
  /** Stored (boot, seq) keys of a device, in receive order. */
  stored(device: string): string[];
  close(): Promise<void>;
}

export async function startBleRig(
  n: number,
  opts: {
    ble?: Record<string, unknown>;
    radio?: BleRadioOptions;
    peripheral?: (i: number) => SimPeripheralOptions;
    enrolled?: number;
  } = {},
): Promise<BleRig> {
  const tmp = tempDir('outpost-ble-');
  const radio = await BleRadio.start({ advertiseIntervalMs: 50, ...opts.radio });
  const manifest = generateManifest({ devices: n, prefix: 'ble', site: 'site-1', model: 'env-1' });
  const enrolled = manifest.devices.slice(0, opts.enrolled ?? n);
  const { gw, lines } = await startTestGateway(
    join(tmp.dir, 'data'),
    enrolled.map((d) => ({ id: d.id, publicKey: d.publicKey })),
    {
      ble: {
        enabled: true,
        radio: radio.url,
        connectTimeoutMs: 2000,
        backoffMinMs: 50,
        backoffMaxMs: 500,
        maxConnecting: 4,
        ...opts.ble,
      },
    },
  );
  const gwKey = gw.identity.publicKey;
  const devices = manifest.devices.map(
    (d) => new VirtualDevice({ id: d.id, seed: manifestSeed(d), model: d.model, signer: 'node' }),
  );
  const peripherals = devices.map((d, i) =>
    radio.add(d, { gatewayPublicKey: gwKey, gatewayId: 'gw-test', resendAfterMs: 500, ...opts.peripheral?.(i) }),
  );
  return {
    gw,
    radio,
    lines,
    peripherals,
    devices,
    stored: (device) => [...gw.frames.query({ device })].map((f) => `${f.boot}:${f.seq}`),
    async close() {
      await gw.stop();
      await radio.close();
      tmp.cleanup();
    },
  };
}
