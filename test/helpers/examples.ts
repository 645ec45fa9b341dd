/**
 * A gateway running one of rules/examples/: its rules.yaml loaded, its manifest's devices
 * enrolled, on a temp store; stopped and removed when the test finishes (after the test's own
 * afterEach hooks, so device links the test stops there go first).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { onTestFinished } from 'vitest';
import { Actuators, type ActuatorValue, commandHandler } from '../../firmware-sim/actuators.js';
import { VirtualDevice } from '../../firmware-sim/device.js';
import { manifestSeed, readManifest } from '../../firmware-sim/manifest.js';
import { MqttDeviceLink } from '../../firmware-sim/transports/mqtt.js';
import type { Gateway } from '../../gateway/gateway.js';
import { startTestGateway, tempDir } from './env.js';

export async function startExampleGateway(name: 'intersection' | 'factory-cell') {
  const example = join(import.meta.dirname, '../../rules/examples', name);
  const tmp = tempDir(`outpost-${name}-`);
  let gw: Gateway | undefined;
  onTestFinished(async () => {
    await gw?.stop();
    tmp.cleanup();
  });
  const manifest = readManifest(join(example, 'manifest.json'));
  /** Each device's actuators and their initial values (actuators.json). */
  const spec = JSON.parse(readFileSync(join(example, 'actuators.json'), 'utf8')) as Record<
    string,
    Record<string, ActuatorValue>
  >;
  const started = await startTestGateway(
    join(tmp.dir, 'data'),
    manifest.devices.map((d) => ({ id: d.id, publicKey: d.publicKey, model: d.model, site: d.site })),
    { rules: { files: [join(example, 'rules.yaml')] } },
  );
  gw = started.gw;
  return { gw: started.gw, url: started.url, manifest, spec };
}

type ExampleGateway = Awaited<ReturnType<typeof startExampleGateway>>;

/** One of an example's devices, simulated, with its actuators (from actuators.json) if it has any. */
export interface ExampleDevice {
  id: string;
  device: VirtualDevice;
  link: MqttDeviceLink;
  actuators: Actuators | undefined;
}

/**
 * The example's manifest devices connected to its gateway over MQTT, those with actuators
 * obeying its commands; their links stop when the test finishes, before the gateway does.
 */
export function connectExampleFleet({ gw, url, manifest, spec }: ExampleGateway): ExampleDevice[] {
  const sims = manifest.devices.map((d) => {
    const device = new VirtualDevice({ id: d.id, seed: manifestSeed(d), model: d.model, signer: 'node' });
    const initial = spec[d.id];
    const actuators =
      initial &&
      new Actuators({ device: d.id, gateways: [{ id: 'gw-test', publicKey: gw.identity.publicKey }], initial });
    const link = actuators ? actuatorLink(device, actuators, url) : new MqttDeviceLink(device, { brokerUrl: url });
    if (!actuators) link.start();
    return { id: d.id, device, link, actuators };
  });
  onTestFinished(async () => {
    for (const s of sims) await s.link.stop();
  });
  return sims;
}

/** A device's MQTT link to a gateway, started, whose commands go to its actuators and are answered over the same link. */
export function actuatorLink(device: VirtualDevice, actuators: Actuators, brokerUrl: string): MqttDeviceLink {
  let link: MqttDeviceLink;
  const handler = commandHandler(actuators, device, (f) => link.send(f));
  link = new MqttDeviceLink(device, { brokerUrl, onCommand: (p) => handler(p) });
  link.start();
  return link;
}
