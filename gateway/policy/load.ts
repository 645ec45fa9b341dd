/**
 * Loads a policy file (YAML, gateway/policy/README.md) into a PolicySet.
 * Every problem is reported as `file:line: problem` (yaml's LineCounter and
 * node ranges), all of them at once, and the load fails: a gateway never runs
 * with a policy it could not parse.
 */
import { readFileSync } from 'node:fs';
import { isMap, isPair, isScalar, LineCounter, parseDocument, type Document } from 'yaml';
import { z } from 'zod';
import { parsePublicKey, publicKeyToDidKey, toHex } from '../../protocols/index.js';
import { compileCondition, ConditionError } from './cel.js';
import {
  ACTIONS,
  type Action,
  type Policy,
  PRINCIPAL_KINDS,
  type Principal,
  REACHES,
  RELATIONS,
  type Relation,
  type PolicySet,
  type TaggingRule,
} from './permissions.js';
import { parseRetention } from '../log/retention.js';
import { globToRegExp } from './text.js';

export class PolicyLoadError extends Error {
  readonly code = 'policy/invalid';
  constructor(
    readonly file: string,
    /** Each problem as `file:line: problem`. */
    readonly problems: string[],
  ) {
    super(`policy file ${file} is invalid:\n  ${problems.join('\n  ')}`);
    this.name = 'PolicyLoadError';
  }
}

/** A gateway known from the config (this gateway, `sync.peers`), usable by name in the file. */
export interface KnownGateway {
  readonly id: string;
  readonly publicKey: Uint8Array;
  readonly kind: 'gateway' | 'cloud';
  readonly site?: string;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const name = z.string().regex(NAME, { message: `must match ${NAME.source}` });
/** Shorter than other names: a block names `policy@version` in at most 64 characters. */
const POLICY_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,47}$/;
const policyName = z.string().regex(POLICY_NAME, { message: `must match ${POLICY_NAME.source}` });
const refList = z.array(z.string().min(1).max(200)).max(1000);

const principalSchema = z
  .object({
    key: z.string().min(1),
    /** Default: the role of the config's sync peer with this key, else app. */
    kind: z.enum(PRINCIPAL_KINDS).optional(),
    /** Default: the site of the config's sync peer with this key. */
    site: name.optional(),
    roles: z.array(name).max(64).default([]),
  })
  .strict();

const policySchema = z
  .object({
    version: z.number().int().min(1).max(1_000_000).default(1),
    purpose: z.union([z.string().min(1), z.array(z.string().min(1)).max(64)]).optional(),
    retention: z.union([z.string(), z.number().int().positive()]).optional(),
    reach: z.enum(REACHES).default('fleet'),
    confidential: z.boolean().default(false),
    actions: z.array(z.enum(ACTIONS)).optional(),
    relations: z.record(z.string(), refList).default({}),
    when: z.string().min(1).max(4096).optional(),
  })
  .strict();

const globField = z.string().min(1).max(200).optional();
const tagSchema = z
  .object({
    policy: policyName,
    device: globField,
    model: globField,
    site: globField,
    name: globField,
    unit: globField,
    when: z.string().min(1).max(4096).optional(),
  })
  .strict();

const fileSchema = z
  .object({
    admins: refList.default([]),
    principals: z.record(name, principalSchema).default({}),
    groups: z.record(name, refList).default({}),
    policies: z.record(policyName, policySchema).default({}),
    tagging: z.array(tagSchema).max(1000).default([]),
    default: policyName.default('default'),
    /** Keys that may sign firmware releases: name → did:key or 64 hex digits. */
    releaseKeys: z.record(name, z.string().min(1).max(200)).default({}),
  })
  .strict();

type RawFile = z.infer<typeof fileSchema>;
type Path = (string | number)[];

/** The built-in set when no policy file is configured: one `default` policy any gateway may hold and read. */
export function defaultPolicySet(gateways: readonly KnownGateway[] = []): PolicySet {
  const policy: Policy = {
    name: 'default',
    version: 0,
    relations: new Map<Relation, string[]>([
      ['holder', ['*']],
      ['reader', ['*']],
      ['aggregator', ['*']],
    ]),
    actions: new Set(ACTIONS),
    purpose: [],
    reach: 'cloud',
    confidential: false,
    source: 'built-in',
  };
  const principals = new Map<string, Principal>();
  for (const g of gateways) principals.set(g.id, gatewayPrincipal(g));
  return {
    file: 'built-in',
    principals,
    byDid: new Map([...principals.values()].map((p) => [p.did, p])),
    groups: new Map(),
    policies: new Map([['default', policy]]),
    tagging: [],
    defaultPolicy: 'default',
    adminKeys: new Set(),
  };
}

const gatewayPrincipal = (g: KnownGateway): Principal => ({
  id: g.id,
  did: publicKeyToDidKey(g.publicKey),
  publicKey: g.publicKey,
  kind: g.kind,
  ...(g.site !== undefined && { site: g.site }),
  roles: [],
});

/**
 * Reads and checks a policy file; throws PolicyLoadError naming file, line and problem.
 * `keyless`: names of the config's gateways whose key is not known yet (this gateway before its
 * first start): references to them are accepted, their key unchecked.
 */
export function loadPolicyFile(
  file: string,
  gateways: readonly KnownGateway[] = [],
  keyless: readonly string[] = [],
): PolicySet {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new PolicyLoadError(file, [`${file}: cannot read: ${(e as Error).message}`]);
  }
  return parsePolicyText(text, file, gateways, keyless);
}

export function parsePolicyText(
  text: string,
  file: string,
  gateways: readonly KnownGateway[] = [],
  keyless: readonly string[] = [],
): PolicySet {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false });
  const problems: string[] = [];
  const lineOf = (offset: number): number => lc.linePos(offset).line;
  if (doc.errors.length > 0)
    throw new PolicyLoadError(
      file,
      doc.errors.map((e) => `${file}:${lineOf(e.pos[0])}: YAML: ${e.message.split('\n')[0]}`),
    );
  const at = (path: Path, key = false): string => `${file}:${lineAt(doc, path, key, lineOf)}`;
  const r = fileSchema.safeParse(doc.toJS({ maxAliasCount: 100 }) ?? {});
  if (!r.success) {
    const seen = new Set<string>();
    for (const i of r.error.issues) {
      const path = i.path as Path;
      const unknown = i.code === 'unrecognized_keys';
      const extra = unknown
        ? `unknown key${i.keys.length > 1 ? 's' : ''} ${i.keys.map((k) => `"${k}"`).join(', ')}`
        : i.message;
      // The line of the offending key itself (the unknown key, or the key whose value is wrong).
      const msg = `${at(unknown ? [...path, i.keys[0]!] : path, true)}: ${path.join('.') || '(top)'}: ${extra}`;
      if (!seen.has(msg)) problems.push(msg);
      seen.add(msg);
    }
    throw new PolicyLoadError(file, problems);
  }
  const set = build(r.data, gateways, new Set(keyless), at, problems, file);
  if (problems.length > 0) throw new PolicyLoadError(file, problems);
  return set;
}

function build(
  raw: RawFile,
  gateways: readonly KnownGateway[],
  keyless: ReadonlySet<string>,
  at: (p: Path, key?: boolean) => string,
  problems: string[],
  file: string,
): PolicySet {
  const principals = new Map<string, Principal>();
  for (const [id, p] of Object.entries(raw.principals)) {
    const k = parsePublicKey(p.key);
    if (!k.ok) {
      problems.push(`${at(['principals', id, 'key'])}: principal ${id}: key ${k.error.message}`);
      continue;
    }
    // A gateway of the config listed here too: its role and site from the config unless given.
    const g = gateways.find((x) => toHex(x.publicKey) === toHex(k.value));
    const site = p.site ?? g?.site;
    principals.set(id, {
      id,
      did: publicKeyToDidKey(k.value),
      publicKey: k.value,
      kind: p.kind ?? g?.kind ?? 'app',
      ...(site !== undefined && { site }),
      roles: p.roles,
    });
  }
  for (const g of gateways) {
    const named = principals.get(g.id);
    // The same name with another key would leave that sibling unknown to every check.
    if (named && named.did !== publicKeyToDidKey(g.publicKey))
      problems.push(
        `${at(['principals', g.id, 'key'])}: principal ${g.id} has another key than the gateway ${g.id} of the config`,
      );
    else if (!named && ![...principals.values()].some((p) => p.did === publicKeyToDidKey(g.publicKey)))
      principals.set(g.id, gatewayPrincipal(g));
  }
  const byDid = new Map<string, Principal>();
  for (const p of principals.values()) {
    const other = byDid.get(p.did);
    if (other) problems.push(`${at(['principals', p.id], true)}: principals ${other.id} and ${p.id} have the same key`);
    byDid.set(p.did, p);
  }
  const roles = new Set([...principals.values()].flatMap((p) => p.roles));

  // A reference: a principal name, a did:key, group:G, role:R, or * (every principal).
  const checkRef = (ref: string, path: Path): void => {
    if (ref === '*' || principals.has(ref) || keyless.has(ref)) return;
    if (ref.startsWith('group:')) {
      if (!(ref.slice(6) in raw.groups)) problems.push(`${at(path)}: unknown group "${ref.slice(6)}"`);
    } else if (ref.startsWith('role:')) {
      if (!roles.has(ref.slice(5))) problems.push(`${at(path)}: unknown role "${ref.slice(5)}" (no principal has it)`);
    } else if (ref.startsWith('did:key:')) {
      if (!parsePublicKey(ref).ok) problems.push(`${at(path)}: "${ref}" is not a valid did:key`);
    } else problems.push(`${at(path)}: unknown principal "${ref}"`);
  };

  // Groups: members are principals, did:keys, roles or groups (nesting); a cycle is an error.
  for (const [g, members] of Object.entries(raw.groups))
    for (const [i, m] of members.entries()) checkRef(m, ['groups', g, i]);
  const groups = new Map<string, Set<string>>();
  const expand = (g: string, stack: string[]): Set<string> => {
    const done = groups.get(g);
    if (done) return done;
    if (stack.includes(g)) {
      problems.push(
        `${at(['groups', g], true)}: cycle in groups: ${[...stack.slice(stack.indexOf(g)), g].join(' → ')}`,
      );
      return new Set();
    }
    const out = new Set<string>();
    for (const m of raw.groups[g] ?? []) {
      if (m.startsWith('group:')) {
        if (m.slice(6) in raw.groups) for (const x of expand(m.slice(6), [...stack, g])) out.add(x);
      } else if (m.startsWith('role:')) {
        for (const p of principals.values()) if (p.roles.includes(m.slice(5))) out.add(p.id);
      } else if (m === '*') for (const p of principals.values()) out.add(p.id);
      else out.add(byDid.get(m)?.id ?? m);
    }
    groups.set(g, out);
    return out;
  };
  for (const g of Object.keys(raw.groups)) expand(g, []);

  const adminKeys = new Set<string>();
  raw.admins.forEach((a, i) => {
    const p = principals.get(a) ?? byDid.get(a);
    const k = p?.publicKey ?? (a.startsWith('did:key:') || /^[0-9a-f]{64}$/i.test(a) ? parsePublicKey(a) : undefined);
    if (k instanceof Uint8Array) adminKeys.add(toHex(k));
    else if (k?.ok) adminKeys.add(toHex(k.value));
    else if (!keyless.has(a)) problems.push(`${at(['admins', i])}: admin "${a}" is not a principal or a key`);
  });

  const policies = new Map<string, Policy>();
  for (const [pname, p] of Object.entries(raw.policies)) {
    const relations = new Map<Relation, string[]>();
    for (const [rel, refs] of Object.entries(p.relations)) {
      if (!(RELATIONS as readonly string[]).includes(rel)) {
        problems.push(
          `${at(['policies', pname, 'relations', rel], true)}: unknown relation "${rel}" (one of ${RELATIONS.join(', ')})`,
        );
        continue;
      }
      for (const [i, ref] of refs.entries()) checkRef(ref, ['policies', pname, 'relations', rel, i]);
      relations.set(rel as Relation, refs);
    }
    let retentionMs: number | undefined;
    if (p.retention !== undefined) {
      retentionMs = parseRetention(p.retention);
      if (retentionMs === undefined)
        problems.push(
          `${at(['policies', pname, 'retention'])}: retention "${String(p.retention)}" is not a duration (30d, 12h, 90m, 3600s, or forever)`,
        );
    }
    const cond = compile(p.when, ['policies', pname, 'when'], at, problems);
    policies.set(pname, {
      name: pname,
      version: p.version,
      relations,
      actions: new Set<Action>(p.actions ?? ACTIONS),
      purpose: p.purpose === undefined ? [] : typeof p.purpose === 'string' ? [p.purpose] : p.purpose,
      ...(retentionMs !== undefined && { retentionMs }),
      reach: p.reach,
      confidential: p.confidential,
      ...(cond && { condition: cond, conditionText: cond.text }),
      source: at(['policies', pname], true),
    });
  }
  if (!policies.has(raw.default)) {
    if (raw.default === 'default' && !('default' in raw.policies))
      policies.set('default', {
        ...defaultPolicySet().policies.get('default')!,
        version: 1,
        reach: 'fleet',
        source: `${file} (implicit default)`,
      });
    else problems.push(`${at(['default'])}: default policy "${raw.default}" is not defined under policies`);
  }

  const tagging: TaggingRule[] = raw.tagging.map((t, i) => {
    if (!policies.has(t.policy) && t.policy !== raw.default)
      problems.push(`${at(['tagging', i, 'policy'])}: unknown policy "${t.policy}"`);
    const cond = compile(t.when, ['tagging', i, 'when'], at, problems);
    return {
      policy: t.policy,
      ...(t.device !== undefined && { device: globToRegExp(t.device) }),
      ...(t.model !== undefined && { model: globToRegExp(t.model) }),
      ...(t.site !== undefined && { site: globToRegExp(t.site) }),
      ...(t.name !== undefined && { name: globToRegExp(t.name) }),
      ...(t.unit !== undefined && { unit: globToRegExp(t.unit) }),
      ...(cond && { condition: cond }),
      source: at(['tagging', i]),
    };
  });
  const releaseKeys = new Map<string, Uint8Array>();
  for (const [n, ref] of Object.entries(raw.releaseKeys)) {
    const k = parsePublicKey(ref);
    if (!k.ok) problems.push(`${at(['releaseKeys', n])}: release key ${n}: ${k.error.message}`);
    else if ([...releaseKeys.values()].some((x) => toHex(x) === toHex(k.value)))
      problems.push(`${at(['releaseKeys', n])}: release key ${n} is listed twice`);
    else if (adminKeys.has(toHex(k.value)) || byDid.has(publicKeyToDidKey(k.value)))
      problems.push(
        `${at(['releaseKeys', n])}: release key ${n} is also an admin or principal key (use a key of its own)`,
      );
    else releaseKeys.set(n, k.value);
  }
  return { file, principals, byDid, groups, policies, tagging, defaultPolicy: raw.default, adminKeys, releaseKeys };
}

function compile(text: string | undefined, path: Path, at: (p: Path) => string, problems: string[]) {
  if (text === undefined) return undefined;
  try {
    return compileCondition(text);
  } catch (e) {
    if (!(e instanceof ConditionError)) throw e;
    problems.push(
      `${at(path)}: CEL ${e.code === 'policy/cel-syntax' ? 'syntax error' : 'type error'} in "${text}": ${e.message}`,
    );
    return undefined;
  }
}

/** The line of the node at `path` (or of its key), else of the nearest ancestor that exists. */
function lineAt(doc: Document, path: Path, key: boolean, lineOf: (offset: number) => number): number {
  for (let n = path.length; n >= 0; n--) {
    const p = path.slice(0, n);
    if (key && n === path.length && n > 0) {
      const parent = p.length > 1 ? doc.getIn(p.slice(0, -1), true) : doc.contents;
      if (isMap(parent)) {
        const pair = parent.items.find((it) => isPair(it) && isScalar(it.key) && it.key.value === p[p.length - 1]);
        const k = pair?.key as { range?: [number, number, number] } | undefined;
        if (k?.range) return lineOf(k.range[0]);
      }
    }
    const node = (n === 0 ? doc.contents : doc.getIn(p, true)) as
      | { range?: [number, number, number] }
      | null
      | undefined;
    if (node?.range) return lineOf(node.range[0]);
  }
  return 1;
}
