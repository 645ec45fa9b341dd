/** `gateway identity` and `gateway --version`: who this gateway is, before it first starts. */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { toHex } from '../../protocols/index.js';
import { loadOrCreateTls } from '../crypto/certificate.js';
import { GatewayIdentity } from '../identity.js';
import { commonOptions, dataDirSpace, resolveConfig } from './args.js';

export const identityHelp = `gateway identity [--config FILE] [--data DIR] [--json]
  Prints this gateway's id and did:key, creating its key (<data>/identity.key, 0600) on
  first use, the same file \`gateway start\` uses: a sibling's sync.peers entry can be
  written before this gateway first starts. With mqtt.tls or api.tls on, also the TLS
  certificate (created on first use, as start does) and its SHA-256 fingerprint: the
  file devices trust (firmware-sim --ca, mosquitto_pub --cafile).`;

export function identity(argv: string[]): number {
  const { values } = parseArgs({ args: argv, options: { ...commonOptions, json: { type: 'boolean' } } });
  if (values.help) {
    console.log(identityHelp);
    return 0;
  }
  const cfg = resolveConfig(values);
  const me = GatewayIdentity.loadOrCreate(cfg.gateway.id, cfg.gateway.dataDir, dataDirSpace(cfg));
  const tls =
    cfg.mqtt.tls.enabled || cfg.api.tls
      ? loadOrCreateTls(cfg.gateway.dataDir, { ...cfg.tls, commonName: cfg.gateway.id })
      : undefined;
  if (values.json) {
    console.log(
      JSON.stringify({
        id: me.id,
        did: me.did,
        publicKey: toHex(me.publicKey),
        dataDir: cfg.gateway.dataDir,
        ...(tls && { tls: { cert: tls.certFile, fingerprint: tls.fingerprint } }),
      }),
    );
    return 0;
  }
  console.log(`id   ${me.id}`);
  console.log(`did  ${me.did}`);
  if (tls) console.log(`tls  ${tls.certFile}\n     SHA-256 ${tls.fingerprint}`);
  console.log(
    `\nas a sibling's sync peer:\n  - { id: ${me.id}, publicKey: "${me.did}", url: "tcp://<this host>:${cfg.sync.port}" }`,
  );
  return 0;
}

/** The package version (package.json two levels up from the sources, three from dist/). */
export function version(): string {
  for (const rel of ['../../package.json', '../../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'outpost' && pkg.version !== undefined) return pkg.version;
    } catch {
      // not here: one level further up
    }
  }
  return 'unknown';
}
