/**
 * `gateway demo intersection|factory-cell`: one command for a running example. A gateway
 * with the example's rules (rules/examples/NAME/rules.yaml) and its devices enrolled, and the
 * example's firmware-sim fleet with its actuators, obeying only this gateway's signed commands.
 * The dashboard shows each actuator's reported state and the latest decisions with reasons.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { validateConfig } from '../config.js';
import { readManifestPublic, Simulation } from '../simulation.js';
import { UsageError } from './args.js';
import { runGateway, runOptions } from './start.js';

// rules/examples sits two levels above this file in the sources and in dist/ (the build copies it).
const EXAMPLES = fileURLToPath(new URL('../../rules/examples/', import.meta.url));

const demos = (): string[] => readdirSync(EXAMPLES).filter((d) => existsSync(join(EXAMPLES, d, 'manifest.json')));

export const demoHelp = `gateway demo NAME [--data DIR] [--port N] [--api-port N] [--rate HZ] [--log-level L] [--log-format F]
  Runs an example from rules/examples (${demos().join(', ')}): a gateway with its rules and
  devices, and its simulated fleet with actuators, until Ctrl-C. Store in --data (default
  ./data/demo-NAME); MQTT on --port (default 1883), dashboard on http://127.0.0.1:--api-port
  (default 8080) with the token in <data>/api-token; --rate: frames per second per device (1).`;

export async function demo(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      ...runOptions,
      data: { type: 'string' },
      'api-port': { type: 'string' },
      rate: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(demoHelp);
    return 0;
  }
  const [name] = positionals;
  if (name === undefined || positionals.length > 1 || !demos().includes(name))
    throw new UsageError(`gateway demo needs one of: ${demos().join(', ')}\n\n${demoHelp}`);
  const rate = Number(values.rate ?? 1);
  if (!(rate > 0 && rate <= 100)) throw new UsageError(`--rate must be a number of frames per second, 0 < HZ ≤ 100`);
  const apiPort = Number(values['api-port'] ?? 8080);
  if (!Number.isInteger(apiPort) || apiPort < 0 || apiPort > 65535)
    throw new UsageError(`--api-port must be 0..65535, not "${values['api-port']}"`);
  const example = join(EXAMPLES, name);
  const manifest = join(example, 'manifest.json');
  const dataDir = resolve(values.data ?? join('data', `demo-${name}`));
  const cfg = validateConfig({
    gateway: { id: `gw-demo-${name}`, dataDir },
    api: { port: apiPort },
    devices: readManifestPublic(manifest),
    rules: { files: [join(example, 'rules.yaml')] },
  });
  return runGateway(cfg, values, {
    simulate: false,
    alongside: async (gw, log) => {
      const fleet = Simulation.run(
        {
          manifest,
          brokerUrl: `mqtt://127.0.0.1:${gw.broker!.port}`,
          rate,
          stateDir: join(dataDir, 'sim-state'),
          args: [
            ...['--gateway-key', gw.identity.did, '--gateway-id', cfg.gateway.id],
            ...['--actuators', join(example, 'actuators.json')],
          ],
        },
        log,
      );
      log.info(
        {
          demo: name,
          devices: cfg.devices.length,
          rules: cfg.rules.files[0],
          dashboard: `http://127.0.0.1:${gw.api?.port}/`,
        },
        `demo ${name}: ${cfg.devices.length} simulated devices with actuators; watch http://127.0.0.1:${gw.api?.port}/`,
      );
      return () => fleet.stop();
    },
  });
}
