/**
 * `firmware-sim update`: updatable devices of a fleet manifest over MQTT (update.ts,
 * update-mqtt.ts), one on a serial line (update-serial.ts) or on a simulated BLE radio of
 * their own (update-ble.ts), each with its flash in `--state DIR/<id>`. Prints one JSON line per report
 * (`{"device","state","offset","reason"}`) so a test or an operator can follow each device.
 * SIGINT/SIGTERM stop it cleanly; SIGKILL is a power loss (the flash keeps what was flushed).
 */
import { parseArgs } from 'node:util';
import { parsePublicKey } from '../protocols/index.js';
import { manifestSeed, readManifest } from './manifest.js';
import { BleRadio } from './transports/ble-radio.js';
import type { UpdatableDeviceOptions } from './update.js';
import { UpdatePeripheral } from './update-ble.js';
import { UpdateLink } from './update-mqtt.js';
import { UpdateSerialLink } from './update-serial.js';

/** MQTT's default chunk and window: 16 KiB × 8 in flight (the broker queues per client). */
const MQTT_CHUNK = 16 * 1024;
const MQTT_WINDOW = 8;

export const UPDATE_USAGE = `  firmware-sim update --keys FILE (--broker URL --gateway-id ID | --serial PATH [--baud N] |
                      --ble-port N [--mtu N]) --release-key KEY --state DIR
                      [--device ID]... [--version V] [--model M] [--fail-test-boot ID,...]
                      [--chunk BYTES] [--window N] [--flash-sync fsync|none]
      Runs updatable devices (all of the manifest, or each --device) over MQTT: two slots, test
      boot, confirm, rollback; they take only images signed by --release-key (did:key or hex) for
      their model (--model, else the manifest's), newer than what runs (--version, default 1.0.0,
      for a fresh --state). --fail-test-boot makes those devices' new image fail its self-test.
      Over MQTT, 16 KiB chunks, window 8 by default.
      --serial: one device (--device) on that tty instead, 2 KiB chunks, window 12 by default.
      --ble-port: the devices as peripherals of a simulated radio on ws://127.0.0.1:N (the
      gateway's ble.radio), chunk and window sized to --mtu (default 247).
      --flash-sync none: the devices' flash writes are not flushed to the host's disk (a power
      loss is the process dying; default fsync: each save flushed, surviving a host crash too).`;

export async function runUpdateCli(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      keys: { type: 'string' },
      broker: { type: 'string' },
      serial: { type: 'string' },
      baud: { type: 'string', default: '115200' },
      'ble-port': { type: 'string' },
      mtu: { type: 'string', default: '247' },
      'gateway-id': { type: 'string' },
      'release-key': { type: 'string' },
      state: { type: 'string' },
      device: { type: 'string', multiple: true },
      version: { type: 'string', default: '1.0.0' },
      model: { type: 'string' },
      'fail-test-boot': { type: 'string', default: '' },
      chunk: { type: 'string' },
      window: { type: 'string' },
      'flash-sync': { type: 'string', default: 'fsync' },
    },
  });
  const need = (v: string | undefined, flag: string): string => {
    if (v === undefined) throw new Error(`update needs --${flag}`);
    return v;
  };
  const manifest = readManifest(need(values.keys, 'keys'));
  const key = parsePublicKey(need(values['release-key'], 'release-key'));
  if (!key.ok) throw new Error(`--release-key: ${key.error.message}`);
  const flashSync = values['flash-sync'];
  if (flashSync !== 'fsync' && flashSync !== 'none') throw new Error('--flash-sync is fsync or none');
  const failing = new Set(values['fail-test-boot'].split(',').filter(Boolean));
  const chosen = values.device ? manifest.devices.filter((d) => values.device!.includes(d.id)) : manifest.devices;
  const device = (d: (typeof chosen)[number]): Omit<UpdatableDeviceOptions, 'send'> => ({
    id: d.id,
    seed: manifestSeed(d),
    model: values.model ?? d.model,
    version: values.version,
    releaseKey: key.value,
    dir: `${need(values.state, 'state')}/${d.id}`,
    failTestBoot: failing.has(d.id),
    flashSync,
    ...(values.chunk !== undefined && { chunkSize: Number(values.chunk) }),
    ...(values.window !== undefined && { window: Number(values.window) }),
    onReport: (state, offset, reason) =>
      process.stdout.write(`${JSON.stringify({ device: d.id, state, offset, ...(reason && { reason }) })}\n`),
  });
  let stop: () => Promise<void>;
  if (values.serial !== undefined) {
    if (chosen.length !== 1) throw new Error('update --serial runs one device: name it with --device');
    const link = new UpdateSerialLink({ ...device(chosen[0]!), path: values.serial, baudRate: Number(values.baud) });
    link.start();
    stop = () => link.stop();
  } else if (values['ble-port'] !== undefined) {
    const radio = await BleRadio.start({ port: Number(values['ble-port']) });
    const peripherals = chosen.map((d) =>
      // Chunk and window come from the MTU (update-ble.ts), whatever --chunk and --window say.
      radio.attach((i) => new UpdatePeripheral(i, { ...device(d), mtu: Number(values.mtu) })).start(),
    );
    process.stderr.write(
      `firmware-sim: BLE radio at ${radio.url} with ${peripherals.length} updatable peripheral(s)\n`,
    );
    stop = async () => {
      for (const p of peripherals) p.stop();
      await radio.close();
    };
  } else {
    const links = chosen.map((d) =>
      new UpdateLink({
        ...device(d),
        brokerUrl: need(values.broker, 'broker'),
        gatewayId: need(values['gateway-id'], 'gateway-id'),
        chunkSize: Number(values.chunk ?? MQTT_CHUNK),
        window: Number(values.window ?? MQTT_WINDOW),
      }).start(),
    );
    stop = async () => {
      await Promise.all(links.map((l) => l.stop()));
    };
  }
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await stop();
  return 0;
}
