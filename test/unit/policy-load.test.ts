/**
 * The policy language (gateway/policy/load.ts, permissions.ts, tagging.ts):
 * a valid file loads; bad files are refused naming file, line and problem;
 * checks follow relations, reach-independent actions, purposes and CEL
 * conditions; tagging maps frames to `policy@version`.
 */
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { publicKeyFromSeed } from '../../gateway/crypto/ed25519.js';
import { parsePolicyText, PolicyLoadError } from '../../gateway/policy/load.js';
import { Permissions, type Principal } from '../../gateway/policy/permissions.js';
import { Tagger } from '../../gateway/policy/tagging.js';
import { parseRetention } from '../../gateway/log/retention.js';
import { globToRegExp } from '../../gateway/policy/text.js';
import { publicKeyToDidKey } from '../../protocols/index.js';

const did = (): string => publicKeyToDidKey(publicKeyFromSeed(randomBytes(32)));
const keys = { alice: did(), bob: did(), ops: did(), gwA: did(), gwB: did(), cloud: did(), app: did() };

const GOOD = `# plant policies
admins: [ops]
principals:
  alice: { key: "${keys.alice}", kind: operator, roles: [technician] }
  bob:   { key: "${keys.bob}", kind: operator }
  ops:   { key: "${keys.ops}", kind: operator }
  gw-a:  { key: "${keys.gwA}", kind: gateway, site: plant-a }
  gw-b:  { key: "${keys.gwB}", kind: gateway, site: plant-b }
  city:  { key: "${keys.cloud}", kind: cloud }
groups:
  maintenance: [role:technician, group:leads]
  leads: [bob]
  gateways: [gw-a, gw-b]
policies:
  vibration:
    version: 3
    purpose: [maintenance]
    retention: 30d
    reach: site
    relations:
      owner: [ops]
      holder: [group:gateways]
      reader: [group:maintenance]
  traffic:
    reach: cloud
    actions: [hold, aggregate]
    relations: { holder: [group:gateways], aggregator: [city], reader: [city] }
  doors:
    confidential: true
    reach: fleet
    relations: { holder: [group:gateways], reader: [alice] }
    when: 'principal.kind == "operator" && purpose == "security"'
tagging:
  - { policy: vibration, model: "press-vib-*" }
  - { policy: traffic, name: "*count", unit: "count" }
  - { policy: doors, when: 'data.name.endsWith("door")' }
default: fleet-data
`;
const GOOD_WITH_DEFAULT = GOOD.replace('tagging:', `  fleet-data:\n    relations: { holder: ["*"] }\ntagging:`);

function problems(text: string): string[] {
  try {
    parsePolicyText(text, 'plant.yaml');
  } catch (e) {
    expect(e).toBeInstanceOf(PolicyLoadError);
    return (e as PolicyLoadError).problems;
  }
  throw new Error('loaded');
}

describe('policy file', () => {
  it('[policy language] loads principals, nested groups, policies and tagging rules', () => {
    const set = parsePolicyText(GOOD_WITH_DEFAULT, 'plant.yaml');
    expect([...set.policies.keys()].sort()).toEqual(['doors', 'fleet-data', 'traffic', 'vibration']);
    const v = set.policies.get('vibration')!;
    expect(v).toMatchObject({
      version: 3,
      reach: 'site',
      retentionMs: 30 * 86_400_000,
      purpose: ['maintenance'],
      confidential: false,
    });
    expect(set.policies.get('doors')!.confidential).toBe(true);
    expect([...set.groups.get('maintenance')!].sort()).toEqual(['alice', 'bob']);
    expect(set.adminKeys.size).toBe(1);
    expect(set.policies.get('vibration')!.source).toBe('plant.yaml:15');
  });

  it('[bad policy files] unknown principal, CEL syntax error and a cycle in groups name file and line', () => {
    expect(
      problems(GOOD_WITH_DEFAULT.replace('reader: [group:maintenance]', 'reader: [group:maintenance, carol]')),
    ).toEqual(['plant.yaml:23: unknown principal "carol"']);
    expect(
      problems(
        GOOD_WITH_DEFAULT.replace(`'principal.kind == "operator" && purpose == "security"'`, `'principal.kind == '`),
      ),
    ).toEqual(['plant.yaml:32: CEL syntax error in "principal.kind == ": Unexpected token: EOF']);
    expect(problems(GOOD_WITH_DEFAULT.replace('leads: [bob]', 'leads: [bob, group:maintenance]'))).toEqual([
      'plant.yaml:11: cycle in groups: maintenance → leads → maintenance',
    ]);
  });

  it('[bad policy files] unknown relation, unknown group, bad retention, unknown policy in tagging, bad key, unknown field', () => {
    expect(problems(GOOD_WITH_DEFAULT.replace('owner: [ops]', 'writer: [ops]'))).toEqual([
      'plant.yaml:21: unknown relation "writer" (one of owner, holder, reader, aggregator, actuator)',
    ]);
    expect(
      problems(
        GOOD_WITH_DEFAULT.replace('holder: [group:gateways]\n      reader', 'holder: [group:gatways]\n      reader'),
      ),
    ).toEqual(['plant.yaml:22: unknown group "gatways"']);
    expect(problems(GOOD_WITH_DEFAULT.replace('retention: 30d', 'retention: 30 days'))).toEqual([
      'plant.yaml:18: retention "30 days" is not a duration (30d, 12h, 90m, 3600s, or forever)',
    ]);
    expect(problems(GOOD_WITH_DEFAULT.replace('{ policy: traffic,', '{ policy: trafic,'))).toEqual([
      'plant.yaml:37: unknown policy "trafic"',
    ]);
    expect(
      problems(GOOD_WITH_DEFAULT.replace(`bob:   { key: "${keys.bob}"`, 'bob:   { key: "did:key:zNope"'))[0],
    ).toMatch(/^plant\.yaml:5: principal bob: key /);
    expect(problems(GOOD_WITH_DEFAULT.replace('reach: site', 'reach: site\n    reech: site'))).toEqual([
      'plant.yaml:20: policies.vibration: unknown key "reech"',
    ]);
    expect(problems(GOOD_WITH_DEFAULT.replace('reach: site', 'reach: planet'))[0]).toMatch(
      /^plant\.yaml:19: policies\.vibration\.reach: /,
    );
    expect(problems('a: [\n')[0]).toMatch(/^plant\.yaml:\d: YAML: /);
    // A block names policy@version in 64 characters, so policy names stop at 48.
    expect(problems(`policies:\n  ${'p'.repeat(49)}: {}\n`)[0]).toMatch(/^plant\.yaml:2: policies\.p{49}: /);
    expect(problems(GOOD)).toEqual(['plant.yaml:37: default policy "fleet-data" is not defined under policies']);
    // A sync peer of the config named in the file with another key.
    expect(() =>
      parsePolicyText(GOOD_WITH_DEFAULT, 'plant.yaml', [
        { id: 'gw-b', publicKey: publicKeyFromSeed(randomBytes(32)), kind: 'gateway' },
      ]),
    ).toThrow(/plant\.yaml:8: principal gw-b has another key than the gateway gw-b of the config/);
  });

  it('[release keys] firmware release keys by name; a bad key, a duplicate or an admin key is refused with its line', () => {
    const rel = did();
    const set = parsePolicyText(`releaseKeys:\n  release-1: "${rel}"\n`, 'plant.yaml');
    expect(publicKeyToDidKey(set.releaseKeys!.get('release-1')!)).toBe(rel);
    expect(problems(`releaseKeys:\n  r1: "did:key:zNope"\n`)[0]).toMatch(/^plant\.yaml:2: release key r1: /);
    expect(problems(`releaseKeys:\n  r1: "${rel}"\n  r2: "${rel}"\n`)).toEqual([
      'plant.yaml:3: release key r2 is listed twice',
    ]);
    expect(problems(`admins: ["${rel}"]\nreleaseKeys:\n  r1: "${rel}"\n`)).toEqual([
      'plant.yaml:3: release key r1 is also an admin or principal key (use a key of its own)',
    ]);
  });

  it('[a refusal names the policy and the missing permission] checks follow relations, actions, purposes and conditions', () => {
    const set = parsePolicyText(GOOD_WITH_DEFAULT, 'plant.yaml');
    const perms = new Permissions(set, 'plant-a');
    const p = (id: string): Principal => perms.principal(id)!;
    expect(perms.check(p('alice'), 'read', 'vibration')).toEqual({ allowed: true });
    expect(perms.check(p('bob'), 'reader', 'vibration')).toEqual({ allowed: true }); // nested group
    expect(perms.check(p('gw-a'), 'hold', 'vibration')).toEqual({ allowed: true });
    expect(perms.check(p('gw-a'), 'read', 'vibration')).toMatchObject({
      allowed: false,
      policy: 'vibration@3',
      missing: 'reader',
    });
    expect(perms.check(p('ops'), 'actuate', 'vibration')).toEqual({ allowed: true }); // owner has every relation
    expect(perms.check(p('alice'), 'read', 'vibration', { purpose: 'marketing' })).toMatchObject({
      allowed: false,
      missing: 'purpose:marketing',
    });
    expect(perms.check(p('city'), 'aggregate', 'traffic')).toEqual({ allowed: true });
    expect(perms.check(p('city'), 'read', 'traffic')).toMatchObject({
      allowed: false,
      policy: 'traffic@1',
      missing: 'action:read',
    });
    expect(perms.check(p('alice'), 'read', 'doors', { purpose: 'security' })).toEqual({ allowed: true });
    expect(perms.check(p('alice'), 'read', 'doors', { purpose: 'curiosity' })).toMatchObject({
      allowed: false,
      missing: 'condition',
    });
    expect(perms.check(keys.app, 'hold', 'vibration')).toMatchObject({ allowed: false, missing: 'holder|reader' }); // a key not in the file: an app with nothing
    expect(perms.check(p('alice'), 'read', 'nope')).toMatchObject({ allowed: false, missing: 'policy' });
    expect(
      perms
        .readers('vibration')
        .map((x) => x.id)
        .sort(),
    ).toEqual(['alice', 'bob', 'ops']);
    expect(perms.readers('traffic').map((x) => x.id)).toEqual([]); // read is not a permitted action
  });

  it('[tagging rules] the first matching rule names the policy as name@version; the rest get the default', () => {
    const set = parsePolicyText(GOOD_WITH_DEFAULT, 'plant.yaml');
    const t = new Tagger(set);
    expect(t.tag({ device: 'p1', model: 'press-vib-2', records: [{ n: 'rms', v: 1 }] })).toBe('vibration@3');
    expect(
      t.tag({ device: 'c1', model: 'counter', records: [{ bn: 'lane1:', n: 'car-count', u: 'count', v: 4 }] }),
    ).toBe('traffic@1');
    expect(t.tag({ device: 'c1', model: 'counter', records: [{ bn: 'lane1:', n: 'car-count', u: 'm', v: 4 }] })).toBe(
      'fleet-data@1',
    );
    expect(
      t.tag({
        device: 'd1',
        records: [
          { n: 'temp', v: 1 },
          { n: 'front-door', vb: true },
        ],
      }),
    ).toBe('doors@1');
    expect(t.tag({ device: 'x' })).toBe('fleet-data@1');
  });

  it('[never crashes the gateway] a condition that fails while evaluating counts as false', () => {
    const set = parsePolicyText(
      `principals:\n  a: { key: "${keys.alice}" }\npolicies:\n  p: { relations: { reader: [a] }, when: 'principal.roles[3] == "x"' }\ntagging:\n  - { policy: p, when: 'data.name[99] == "x"' }\n`,
      'p.yaml',
    );
    expect(new Permissions(set).check(keys.alice, 'read', 'p')).toMatchObject({ allowed: false, missing: 'condition' });
    expect(new Tagger(set).tag({ device: 'd', records: [{ n: 't', v: 1 }] })).toBe('default@1');
  });

  it('[globs and durations] a glob without wildcards matches exactly itself; * and ? match runs and single characters (property)', () => {
    fc.assert(
      fc.property(
        fc.string({ maxLength: 20 }).filter((x) => !/[*?]/.test(x)),
        fc.string({ maxLength: 20 }),
        (lit, other) => {
          expect(globToRegExp(lit).test(lit)).toBe(true);
          expect(globToRegExp(lit).test(other)).toBe(other === lit);
          expect(globToRegExp(`${lit}*`).test(lit + other)).toBe(true);
          expect(globToRegExp(`?${lit}`).test(`x${lit}`)).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
    expect([
      parseRetention('30d'),
      parseRetention('12h'),
      parseRetention('90m'),
      parseRetention('3600s'),
      parseRetention('forever'),
      parseRetention('30 days'),
      parseRetention('0d'),
    ]).toEqual([2_592_000_000, 43_200_000, 5_400_000, 3_600_000, Infinity, undefined, undefined]);
  });
});
