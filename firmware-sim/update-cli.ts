/**
 * `firmware-sim update`: updatable devices of a fleet manifest over MQTT (update.ts,
 * update-mqtt.ts), each with its flash in `--state DIR/<id>`. Prints one JSON line per report
 * (`{"device","state","offset","reason"}`) so a test or an operator can follow each device.
 * SIGINT/SIGTERM stop it cleanly; SIGKILL is a power loss (the flash keeps what was flushed).
 */
import { parseArgs } from 'node:util';
import { parsePublicKey } from '../protocols/index.js';
import { manifestSeed, readManifest } from './manifest.js';
import { UpdateLink } from './update-mqtt.js';

export const UPDATE_USAGE = `  firmware-sim update --keys FILE --broker URL --gateway-id ID --release-key KEY --state DIR
                      [--device ID]... [--version V] [--model M] [--fail-test-boot ID,...]
                      [--chunk BYTES] [--window N]
      Runs updatable devices (all of the manifest, or each --device) over MQTT: two slots, test
      boot, confirm, rollback; they take only images signed by --release-key (did:key or hex) for
      their model (--model, else the manifest's), newer than what runs (--version, default 1.0.0,
      for a fresh --state). --fail-test-boot makes those devices' new image fail its self-test.`;

export async function runUpdateCli(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      keys: { type: 'string' },
      broker: { type: 'string' },
      'gateway-id': { type: 'string' },
      'release-key': { type: 'string' },
      state: { type: 'string' },
      device: { type: 'string', multiple: true },
      version: { type: 'string', default: '1.0.0' },
      model: { type: 'string' },
      'fail-test-boot': { type: 'string', default: '' },
      chunk: { type: 'string', default: '4096' },
      window: { type: 'string', default: '8' },
    },
  });
  const need = (v: string | undefined, flag: string): string => {
    if (v === undefined) throw new Error(`update needs --${flag}`);
    return v;
  };
  const manifest = readManifest(need(values.keys, 'keys'));
  const key = parsePublicKey(need(values['release-key'], 'release-key'));
  if (!key.ok) throw new Error(`--release-key: ${key.error.message}`);
  const failing = new Set(values['fail-test-boot'].split(',').filter(Boolean));
  const chosen = values.device ? manifest.devices.filter((d) => values.device!.includes(d.id)) : manifest.devices;
  const links = chosen.map(
    (d) =>
      new UpdateLink({
        id: d.id,
        seed: manifestSeed(d),
        model: values.model ?? d.model,
        version: values.version,
        releaseKey: key.value,
        dir: `${need(values.state, 'state')}/${d.id}`,
        brokerUrl: need(values.broker, 'broker'),
        gatewayId: need(values['gateway-id'], 'gateway-id'),
        failTestBoot: failing.has(d.id),
        chunkSize: Number(values.chunk),
        window: Number(values.window),
        onReport: (state, offset, reason) =>
          process.stdout.write(`${JSON.stringify({ device: d.id, state, offset, ...(reason && { reason }) })}\n`),
      }),
  );
  for (const l of links) l.start();
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await Promise.all(links.map((l) => l.stop()));
  return 0;
}
