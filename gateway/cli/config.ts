/** `gateway config check|schema`. */
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { configJsonSchema } from '../config.js';
import { GatewayIdentity } from '../identity.js';
import { loadStartInputs } from '../start-inputs.js';
import { resolveConfig, UsageError } from './args.js';

export const configHelp = `gateway config check FILE [--data DIR]  validate a config, its policy file and rule files as \`gateway start\` loads them (errors name the key, or file:line)
gateway config schema [--out F] print the config's JSON Schema`;

export async function config(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'check') {
    const { values, positionals } = parseArgs({
      args: rest,
      allowPositionals: true,
      options: { data: { type: 'string' } },
    });
    const [file] = positionals;
    if (file === undefined || positionals.length > 1)
      throw new UsageError('usage: gateway config check FILE [--data DIR]');
    const cfg = resolveConfig({ config: file, data: values.data });
    // The key `gateway start` would use: the data directory's identity, if the gateway has started once.
    const dataDir = resolve(cfg.gateway.dataDir);
    const selfKey = GatewayIdentity.publicKeyIn(dataDir);
    const { ruleSet } = await loadStartInputs(cfg, selfKey);
    const files = cfg.rules.files.length;
    const notes = [
      ...(cfg.policy.file !== undefined ? [`policy file ${cfg.policy.file}: ok`] : []),
      ...(ruleSet ? [`${ruleSet.rules.length} rules in ${files} rule file${files > 1 ? 's' : ''}: ok`] : []),
    ];
    console.log(`${file}: ok${notes.length > 0 ? ` (${notes.join('; ')})` : ''}`);
    if (selfKey === undefined && cfg.policy.file !== undefined)
      console.log(
        `note: ${dataDir} holds no gateway identity yet, so "${cfg.gateway.id}" was accepted as a principal by name; its key is checked at the first start (or pass --data DIR)`,
      );
    return 0;
  }
  if (sub === 'schema') {
    const { values } = parseArgs({ args: rest, options: { out: { type: 'string' } } });
    const text = JSON.stringify(configJsonSchema(), null, 2);
    if (values.out !== undefined) writeFileSync(values.out, text + '\n');
    else console.log(text);
    return 0;
  }
  throw new UsageError(`usage:\n${configHelp}`);
}
