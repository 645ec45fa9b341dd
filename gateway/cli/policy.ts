/**
 * `gateway policy …`: admin keys, grants and revocations (handed to the
 * running gateway through <dataDir>/policy-pending, see policy/inbox.ts, so
 * the CLI never authors on the gateway's stream), and the current state.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { publicKeyToDidKey, toHex } from '../../protocols/index.js';
import { type PolicyOp, policyOpSigningInput } from '../../protocols/policy-op.js';
import { privateKeyObject, publicKeyFromSeed, signEd25519 } from '../crypto/ed25519.js';
import { BlockLog } from '../log/block-log.js';
import { GrantState } from '../policy/grants.js';
import { opProblem, queueOp } from '../policy/inbox.js';
import { Store } from '../store/store.js';
import { siblingKeys } from '../sync/siblings.js';
import { RELATIONS } from '../policy/permissions.js';
import { loadPolicySet } from '../policy/runtime.js';
import { DiskLowError } from '../store/free-space.js';
import {
  CliError,
  commonOptions,
  dataDirSpace,
  existingIdentity,
  parseWait,
  reportQueued,
  resolveConfig,
  UsageError,
} from './args.js';

export const policyHelp = `gateway policy keygen --out FILE
  Creates an admin key (Ed25519 seed, 64 hex digits, mode 0600) and prints its did:key
  (list it under \`admins\` in the policy file).
gateway policy grant|revoke PRINCIPAL RELATION POLICY --admin-key FILE [--config F] [--data D] [--wait S]
  Signs a grant or revocation with the admin key and hands it to the gateway, which logs it
  as a policy block on its $acl stream (synced to the fleet). PRINCIPAL is a principal name,
  a did:key, group:G or role:R; RELATION one of ${RELATIONS.join(', ')}. --wait S waits up to
  S seconds for the gateway to log it.
gateway policy show [--config F] [--data D] [--json]
  The policies and the grants/revocations in force in this gateway's log.
gateway policy check FILE [--config F]
  Loads a policy file (principals may name the config's sync peers) and prints its policies.`;

export async function policy(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'keygen') return keygen(rest);
  if (sub === 'grant' || sub === 'revoke') return grantOrRevoke(sub, rest);
  if (sub === 'check') return check(rest);
  if (sub === 'show') return show(rest);
  if (sub === '--help' || sub === '-h' || sub === 'help') {
    console.log(policyHelp);
    return 0;
  }
  throw new UsageError(`usage:\n${policyHelp}`);
}

function keygen(argv: string[]): number {
  const { values } = parseArgs({ args: argv, options: { out: { type: 'string' } } });
  if (values.out === undefined) throw new UsageError('policy keygen needs --out FILE');
  if (existsSync(values.out)) throw new CliError(`${values.out} exists; not overwriting a key`);
  const seed = crypto.getRandomValues(new Uint8Array(32));
  writeFileSync(values.out, toHex(seed) + '\n', { mode: 0o600, flag: 'wx' });
  console.log(publicKeyToDidKey(publicKeyFromSeed(seed)));
  return 0;
}

function readAdminKey(file: string): Uint8Array {
  let text: string;
  try {
    text = readFileSync(file, 'utf8').trim();
  } catch (e) {
    throw new CliError(`cannot read admin key ${file}: ${(e as Error).message}`);
  }
  if (!/^[0-9a-f]{64}$/i.test(text))
    throw new CliError(`${file} must hold 64 hex digits (an Ed25519 seed, as written by \`gateway policy keygen\`)`);
  return Uint8Array.from(Buffer.from(text, 'hex'));
}

async function grantOrRevoke(op: 'grant' | 'revoke', argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { ...commonOptions, 'admin-key': { type: 'string' }, wait: { type: 'string' } },
  });
  if (values.help) {
    console.log(policyHelp);
    return 0;
  }
  const [principalArg, relation, policyName] = positionals;
  const wait = parseWait(values.wait);
  if (positionals.length !== 3 || !principalArg || !relation || !policyName)
    throw new UsageError(`usage: gateway policy ${op} PRINCIPAL RELATION POLICY --admin-key FILE`);
  if (!(RELATIONS as readonly string[]).includes(relation))
    throw new UsageError(`relation must be one of ${RELATIONS.join(', ')}, not "${relation}"`);
  if (values['admin-key'] === undefined) throw new UsageError(`policy ${op} needs --admin-key FILE`);
  const cfg = resolveConfig(values);
  const set = loadPolicySet(cfg);
  // A principal name of the policy file is recorded by its did:key, so the grant survives renames.
  let principal = principalArg;
  const named = set.principals.get(principalArg);
  if (named) principal = named.did;
  else if (!/^(did:key:|group:|role:)/.test(principalArg))
    throw new UsageError(`unknown principal "${principalArg}" (a name of ${set.file}, a did:key, group:G or role:R)`);
  const seed = readAdminKey(values['admin-key']);
  const claim = { op, principal, relation, policy: policyName, issuedAt: Date.now(), admin: publicKeyFromSeed(seed) };
  const signed: PolicyOp = {
    ...claim,
    signature: signEd25519(privateKeyObject(seed), policyOpSigningInput(claim)),
    after: [],
  };
  const problem = opProblem(signed, set);
  if (problem) throw new CliError(`not queued: ${problem}`);
  const dataDir = resolve(cfg.gateway.dataDir);
  let file: string;
  try {
    file = queueOp(dataDir, signed, dataDirSpace(cfg));
  } catch (e) {
    if (e instanceof DiskLowError) throw new CliError(`not queued: ${e.message}`);
    throw e;
  }
  const what = `${op} of ${relation} on ${policyName} to ${principalArg}`;
  return reportQueued(file, wait, {
    queued: `${what} queued (${file}); the running gateway logs it within a second`,
    logged: `${what} logged`,
    dataDir,
  });
}

function check(argv: string[]): number {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: commonOptions });
  const [file] = positionals;
  if (file === undefined) throw new UsageError('policy check needs a FILE');
  const set = loadPolicySet({ ...resolveConfig(values), policy: { file } });
  for (const p of set.policies.values()) {
    console.log(
      `${p.name}@${p.version}: reach ${p.reach}${p.confidential ? ', confidential' : ''}${p.retentionMs !== undefined ? `, retention ${Number.isFinite(p.retentionMs) ? `${p.retentionMs / 1000}s` : 'forever'}` : ''}`,
    );
  }
  console.log(
    `${file}: ok (${set.policies.size} policies, ${set.tagging.length} tagging rules, ${set.adminKeys.size} admin keys)`,
  );
  return 0;
}

async function show(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { ...commonOptions, json: { type: 'boolean' } } });
  const cfg = resolveConfig(values);
  const set = loadPolicySet(cfg);
  const dataDir = resolve(cfg.gateway.dataDir);
  const identity = existingIdentity(cfg);
  const store = Store.open(dataDir);
  try {
    const log = new BlockLog(store, {
      publicKey: identity.publicKey,
      sign: identity.sign,
      knownAuthors: siblingKeys(cfg.sync),
      withheldParentsOk: cfg.policy.file !== undefined,
    });
    const grants = GrantState.fromLog(log, set.adminKeys);
    const name = (ref: string): string => set.byDid.get(ref)?.id ?? ref;
    const policies = [...set.policies.values()].map((p) => ({
      name: p.name,
      version: p.version,
      reach: p.reach,
      confidential: p.confidential,
      retentionMs: p.retentionMs ?? null,
    }));
    const state = grants.snapshot().map((g) => ({ ...g, principal: name(g.ref) }));
    if (values.json) console.log(JSON.stringify({ file: set.file, policies, grants: state, ignored: grants.ignored }));
    else {
      for (const p of policies)
        console.log(`policy ${p.name}@${p.version}: reach ${p.reach}${p.confidential ? ', confidential' : ''}`);
      for (const g of state) console.log(`${g.status} ${g.relation} on ${g.policy} to ${g.principal}`);
      if (grants.ignored.length > 0)
        console.log(`${grants.ignored.length} policy blocks not signed by an admin key of ${set.file} (ignored)`);
    }
    return 0;
  } finally {
    await store.close();
  }
}
