/** `gateway devices enroll|list|revoke`. */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Registry, RegistryError } from '../registry.js';
import { readManifestPublic } from '../simulation.js';
import { DiskLowError } from '../store/free-space.js';
import { Store } from '../store/store.js';
import { CliError, commonOptions, dataDirSpace, resolveConfig, UsageError } from './args.js';
import { setSettings, showSettings } from './device-settings.js';
import { toJson } from './json.js';

export const devicesHelp = `gateway devices enroll --id ID --key KEY [--site S] [--model M] [--name N]
gateway devices enroll --from MANIFEST.json      (public keys of a firmware-sim manifest)
gateway devices list [--json]
gateway devices revoke ID
gateway devices set ID key=value… [--wait S]   (desired settings; true/false, numbers, "quoted" or bare text)
gateway devices settings ID [--json]           (desired vs reported, pending keys)
  KEY is an Ed25519 public key as 64 hex digits or a did:key. Common: --config FILE, --data DIR.`;

async function withRegistry<T>(
  values: { config?: string | undefined; data?: string | undefined },
  fn: (r: Registry) => Promise<T>,
): Promise<T> {
  const cfg = resolveConfig(values);
  const store = Store.open(resolve(cfg.gateway.dataDir));
  try {
    return await fn(new Registry(store, dataDirSpace(cfg)));
  } catch (e) {
    if (e instanceof RegistryError) throw new CliError(`${e.message} (${e.code})`);
    if (e instanceof DiskLowError) throw new CliError(e.message);
    throw e;
  } finally {
    await store.close();
  }
}

export async function devices(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: rest,
    options: {
      ...commonOptions,
      id: { type: 'string' },
      key: { type: 'string' },
      site: { type: 'string' },
      model: { type: 'string' },
      name: { type: 'string' },
      from: { type: 'string' },
      json: { type: 'boolean' },
      wait: { type: 'string' },
    },
    allowPositionals: true,
  });
  if (values.help || sub === undefined) {
    console.log(devicesHelp);
    return sub === undefined ? 2 : 0;
  }
  switch (sub) {
    case 'enroll': {
      if (values.from !== undefined) {
        const list = readManifestPublic(values.from);
        await withRegistry(values, async (r) => {
          for (const d of list) await r.enroll(d);
        });
        console.log(`enrolled ${list.length} device(s) from ${values.from}`);
        return 0;
      }
      if (values.id === undefined || values.key === undefined)
        throw new UsageError(`enroll needs --id and --key (or --from)\n${devicesHelp}`);
      const { id, key } = values;
      const rec = await withRegistry(values, (r) =>
        r.enroll({
          id,
          publicKey: key,
          ...(values.site !== undefined && { site: values.site }),
          ...(values.model !== undefined && { model: values.model }),
          ...(values.name !== undefined && { name: values.name }),
        }),
      );
      console.log(`enrolled ${rec.id} (${Registry.didKey(rec)})`);
      return 0;
    }
    case 'list': {
      const list = await withRegistry(values, async (r) => r.list());
      if (values.json) {
        for (const d of list) console.log(toJson({ ...d, did: Registry.didKey(d) }));
        return 0;
      }
      if (list.length === 0) console.log('no devices enrolled');
      for (const d of list) {
        const state = d.revokedAt !== undefined ? `revoked ${new Date(d.revokedAt).toISOString()}` : 'active';
        console.log(
          `${d.id.padEnd(20)} ${state.padEnd(32)} ${(d.site ?? '-').padEnd(12)} ${(d.model ?? '-').padEnd(14)} ${Registry.didKey(d)}`,
        );
      }
      return 0;
    }
    case 'revoke': {
      if (positionals.length !== 1) throw new UsageError(`revoke needs one device id\n${devicesHelp}`);
      const rec = await withRegistry(values, (r) => r.revoke(positionals[0]!));
      console.log(`revoked ${rec.id}`);
      return 0;
    }
    case 'set':
      return setSettings(values, positionals);
    case 'settings':
      return showSettings(values, positionals);
    default:
      throw new UsageError(`unknown devices command "${sub}"\n${devicesHelp}`);
  }
}
