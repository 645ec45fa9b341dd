/**
 * The permission API every enforcement point uses (sync, query API, feeds,
 * exports, rules, key wrapping): the loaded policy set, principals, and
 * `check(principal, action | relation, policy, context?)`.
 *
 * Effective membership of a relation = the policy file's static relations,
 * overridden by the grant/revoke state in the log (grants.ts, a CRDT over
 * kind-3 blocks): a revoke in force on the principal itself denies even a
 * static membership; a grant in force allows. Relations imply others
 * (owner ⊇ everything, reader ⊇ holder); actions come from relations and a
 * policy may cap them (`actions:`). A CEL `when` condition (compiled once at
 * load) must also hold, except for owners.
 */
import { Subject } from 'rxjs';
import { parsePublicKey } from '../../protocols/index.js';
import type { CompiledCondition } from './cel.js';

export const RELATIONS = ['owner', 'holder', 'reader', 'aggregator', 'actuator'] as const;
export type Relation = (typeof RELATIONS)[number];
export const ACTIONS = ['hold', 'read', 'aggregate', 'actuate', 'export'] as const;
export type Action = (typeof ACTIONS)[number];
export const REACHES = ['gateway', 'site', 'fleet', 'cloud'] as const;
export type Reach = (typeof REACHES)[number];
export const PRINCIPAL_KINDS = ['gateway', 'cloud', 'operator', 'app', 'rule'] as const;
export type PrincipalKind = (typeof PRINCIPAL_KINDS)[number];

/** Which relations give an action (owner gives all). */
const ACTION_RELATIONS: Readonly<Record<Action, readonly Relation[]>> = {
  hold: ['owner', 'holder', 'reader'],
  read: ['owner', 'reader'],
  aggregate: ['owner', 'reader', 'aggregator'],
  actuate: ['owner', 'actuator'],
  export: ['owner', 'reader'],
};
/** Relations that imply a relation (besides itself). */
const IMPLIED_BY: Readonly<Record<Relation, readonly Relation[]>> = {
  owner: [],
  holder: ['owner', 'reader'],
  reader: ['owner'],
  aggregator: ['owner'],
  actuator: ['owner'],
};

/** A principal: a gateway, cloud peer, operator, app or rule, known by its did:key. */
export interface Principal {
  /** Name in the policy file, or the did:key itself for a principal only known by key. */
  readonly id: string;
  /** did:key of its Ed25519 key. */
  readonly did: string;
  /** Raw 32-byte Ed25519 public key. */
  readonly publicKey: Uint8Array;
  readonly kind: PrincipalKind;
  /** Site of a gateway (reach `site`). */
  readonly site?: string;
  readonly roles: readonly string[];
}

export interface Policy {
  readonly name: string;
  /** Bumped by the operator when the policy changes; blocks name it as `name@version`. */
  readonly version: number;
  /** Static relation members: principal names, `did:key:…`, `group:G`, `role:R` or `*`. */
  readonly relations: ReadonlyMap<Relation, readonly string[]>;
  /** The actions this policy permits at all (default: every action). */
  readonly actions: ReadonlySet<Action>;
  /** Purposes data under this policy may be used for (empty = any). */
  readonly purpose: readonly string[];
  /** Keep blocks this long (ms); Infinity = `forever`; undefined = not set (the config's `log.retention` decides). */
  readonly retentionMs?: number;
  readonly reach: Reach;
  /** Block bodies are encrypted for readers (policy B's part). */
  readonly confidential: boolean;
  /** CEL `when`, compiled at load. */
  readonly condition?: CompiledCondition;
  /** Source text of `when`, for messages. */
  readonly conditionText?: string;
  /** Where it was defined (file:line), for messages. */
  readonly source: string;
}

/** A tagging rule: the first that matches a frame names its policy. */
export interface TaggingRule {
  readonly policy: string;
  /** Glob patterns (`*` and `?`) on the frame's device, the registry's model/site, a SenML record's name/unit. */
  readonly device?: RegExp;
  readonly model?: RegExp;
  readonly site?: RegExp;
  readonly name?: RegExp;
  readonly unit?: RegExp;
  readonly condition?: CompiledCondition;
  readonly source: string;
}

export interface PolicySet {
  /** The policy file (or `config` when inline / built in). */
  readonly file: string;
  readonly principals: ReadonlyMap<string, Principal>;
  /** did:key → principal. */
  readonly byDid: ReadonlyMap<string, Principal>;
  /** Group → its members, nested groups expanded (principal ids). */
  readonly groups: ReadonlyMap<string, ReadonlySet<string>>;
  readonly policies: ReadonlyMap<string, Policy>;
  readonly tagging: readonly TaggingRule[];
  /** Policy of frames no rule matches. */
  readonly defaultPolicy: string;
  /** Raw Ed25519 keys (hex) that may sign grants and revocations. */
  readonly adminKeys: ReadonlySet<string>;
  /** Keys that may sign firmware releases, by name (the file's `releaseKeys`; none when absent). */
  readonly releaseKeys?: ReadonlyMap<string, Uint8Array>;
}

/** What a check may look at besides the principal. */
export interface CheckContext {
  /** The purpose the data is requested for. */
  readonly purpose?: string;
  /** A frame's attributes, when checking per frame (tagging, feeds). */
  readonly data?: {
    readonly device?: string;
    readonly model?: string;
    readonly site?: string;
    readonly name?: string;
    readonly unit?: string;
  };
}

export type CheckResult =
  | { readonly allowed: true }
  | {
      readonly allowed: false;
      readonly policy: string;
      /** The missing permission: a relation, `action:X`, `purpose:P`, `condition` or `policy` (unknown). */
      readonly missing: string;
      readonly reason: string;
    };

/** Grant state in force for one (principal ref, relation, policy), from the log (grants.ts). */
export type GrantStatus = 'granted' | 'revoked' | undefined;

export interface GrantView {
  status(ref: string, relation: Relation, policy: string): GrantStatus;
  /** Every (ref, relation, policy) with a grant in force (for `readers`). */
  granted(): Iterable<{ readonly ref: string; readonly relation: Relation; readonly policy: string }>;
}

const NO_GRANTS: GrantView = { status: () => undefined, granted: () => [] };

class PermissionError extends Error {
  constructor(
    readonly code: 'policy/unknown-policy' | 'policy/unknown-principal' | 'policy/bad-principal',
    message: string,
  ) {
    super(message);
    this.name = 'PermissionError';
  }
}

/** A change in the grant state (a grant or revoke logged or received). */
export interface PermissionChange {
  readonly policy: string;
  readonly relation: Relation;
  readonly ref: string;
  readonly status: GrantStatus;
}

export class Permissions {
  /** Fires when grants/revocations change the state (key wrapping rotates on revoke). */
  readonly changes$ = new Subject<PermissionChange>();
  private grants: GrantView = NO_GRANTS;

  constructor(
    readonly set: PolicySet,
    /** This gateway's site (`gateway.site`), the CEL variable `site`. */
    readonly site: string = '',
  ) {}

  /** Connects the grant state from the log (grants.ts calls `notify` on every change). */
  attachGrants(view: GrantView): void {
    this.grants = view;
  }

  notify(change: PermissionChange): void {
    this.changes$.next(change);
  }

  policy(name: string): Policy | undefined {
    return this.set.policies.get(name);
  }

  /** The principal with this did:key or name; an unknown did:key is an `app` known only by key. */
  principal(ref: string): Principal | undefined {
    const known = this.set.principals.get(ref) ?? this.set.byDid.get(ref);
    if (known || !ref.startsWith('did:key:')) return known;
    const k = parsePublicKey(ref);
    return k.ok ? { id: ref, did: ref, publicKey: k.value, kind: 'app', roles: [] } : undefined;
  }

  /** The refs (`*`, name, did, group:G, role:R) that name this principal. */
  refsOf(p: Principal): string[] {
    const refs = ['*', p.did];
    if (p.id !== p.did) refs.push(p.id);
    for (const [g, members] of this.set.groups) if (members.has(p.id)) refs.push(`group:${g}`);
    for (const r of p.roles) refs.push(`role:${r}`);
    return refs;
  }

  /** Whether the principal holds this relation on the policy (static ∪ granted − revoked). */
  hasRelation(p: Principal, relation: Relation, policy: Policy): boolean {
    const refs = this.refsOf(p);
    for (const rel of [relation, ...IMPLIED_BY[relation]]) {
      // A revoke or grant on the principal itself decides.
      const own = this.grants.status(p.did, rel, policy.name);
      if (own === 'granted') return true;
      if (own === 'revoked') continue;
      const statics = policy.relations.get(rel) ?? [];
      for (const ref of refs) {
        if (ref === p.did) continue;
        const st = this.grants.status(ref, rel, policy.name);
        if (st === 'granted' || (st === undefined && statics.includes(ref))) return true;
      }
    }
    return false;
  }

  /**
   * May `principal` do `what` (an action or a relation) on data under `policyName`?
   * A refusal names the policy and the missing permission.
   */
  check(
    principal: Principal | string,
    what: Action | Relation,
    policyName: string,
    context: CheckContext = {},
  ): CheckResult {
    const policy = this.set.policies.get(policyName);
    if (!policy) return { allowed: false, policy: policyName, missing: 'policy', reason: `no policy "${policyName}"` };
    const p = typeof principal === 'string' ? this.principal(principal) : principal;
    if (!p)
      return {
        allowed: false,
        policy: policyName,
        missing: isRelation(what) ? what : `action:${what}`,
        reason: `unknown principal ${String(principal)}`,
      };
    let relation: Relation | undefined;
    if (isRelation(what)) {
      if (!this.hasRelation(p, what, policy)) return deny(policy, what, `${p.id} is not ${what} of ${policy.name}`);
      relation = what;
    } else {
      if (!policy.actions.has(what))
        return deny(policy, `action:${what}`, `policy ${policy.name} does not permit ${what}`);
      relation = ACTION_RELATIONS[what].find((r) => this.hasRelation(p, r, policy));
      if (relation === undefined)
        return deny(
          policy,
          ACTION_RELATIONS[what].filter((r) => r !== 'owner').join('|'),
          `${p.id} may not ${what} data of ${policy.name}`,
        );
    }
    if (context.purpose !== undefined && policy.purpose.length > 0 && !policy.purpose.includes(context.purpose)) {
      return deny(
        policy,
        `purpose:${context.purpose}`,
        `policy ${policy.name} allows purposes ${policy.purpose.join(', ')}`,
      );
    }
    if (policy.condition && relation !== 'owner') {
      const ok = policy.condition.test({
        principal: {
          id: p.id,
          did: p.did,
          kind: p.kind,
          site: p.site ?? '',
          roles: [...p.roles],
          groups: this.refsOf(p)
            .filter((r) => r.startsWith('group:'))
            .map((r) => r.slice(6)),
        },
        action: isRelation(what) ? '' : what,
        relation,
        purpose: context.purpose ?? '',
        site: this.site,
        data: { device: '', model: '', site: '', name: '', unit: '', ...context.data },
      });
      if (!ok)
        return deny(policy, 'condition', `condition of ${policy.name} does not hold: ${policy.conditionText ?? ''}`);
    }
    return { allowed: true };
  }

  /** Principals allowed to read data of a policy (whom a confidential policy's data key is wrapped for). */
  readers(policyName: string): Principal[] {
    const policy = this.set.policies.get(policyName);
    if (!policy) throw new PermissionError('policy/unknown-policy', `no policy "${policyName}"`);
    const candidates = new Map<string, Principal>();
    for (const p of this.set.principals.values()) candidates.set(p.did, p);
    for (const g of this.grants.granted())
      if (g.ref.startsWith('did:key:') && !candidates.has(g.ref)) {
        const p = this.principal(g.ref);
        if (p) candidates.set(p.did, p);
      }
    return [...candidates.values()].filter((p) => this.check(p, 'read', policyName).allowed);
  }
}

const isRelation = (x: string): x is Relation => (RELATIONS as readonly string[]).includes(x);

function deny(policy: Policy, missing: string, reason: string): CheckResult {
  return { allowed: false, policy: `${policy.name}@${policy.version}`, missing, reason };
}
