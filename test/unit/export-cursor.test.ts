/**
 * The cursor block body (protocols/export-cursor.ts): round trips through canonical CBOR and a
 * signed block, one encoding whatever the entry order, bounds and arbitrary input never
 * throwing; the gateway's mapping from an export cursor and back, and the merge of cursors
 * logged by several gateways (never more than one of them confirmed, never less than either);
 * in a real log, superseded cursor blocks pruned while each sink's latest stays; under a policy
 * file the `$export` stream goes to sibling gateways only.
 */
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfigError, validateConfig } from '../../gateway/config.js';
import { publicKeyFromSeed } from '../../gateway/crypto/ed25519.js';
import { parsePolicyText } from '../../gateway/policy/load.js';
import { Permissions } from '../../gateway/policy/permissions.js';
import { SyncPolicy } from '../../gateway/policy/sync-filter.js';
import { logNode } from '../helpers/log-node.js';
import { CursorLog, cursorOf, cursorRecord, mergeCursors } from '../../gateway/export/cursor-log.js';
import type { ExportCursor } from '../../gateway/export/source.js';
import {
  decodeBlock,
  decodeCbor,
  encodeBlock,
  encodeCanonical,
  ProtocolUsageError,
  publicKeyToDidKey,
  toHex,
} from '../../protocols/index.js';
import {
  CURSOR_STREAM,
  type CursorChain,
  type CursorRecord,
  cursorBody,
  decodeCursorBody,
  MAX_CURSOR_CHAINS,
} from '../../protocols/export-cursor.js';

const chain: fc.Arbitrary<CursorChain> = fc
  .record({
    author: fc.uint8Array({ minLength: 32, maxLength: 32 }),
    stream: fc.stringMatching(/^[A-Za-z0-9$._-]{1,64}$/),
    next: fc.nat({ max: 2 ** 40 }),
    top: fc.option(fc.tuple(fc.integer({ min: 1, max: 1000 }), fc.nat({ max: 1000 })), { nil: undefined }),
  })
  .map(({ top, ...c }) => (top ? { ...c, top: [c.next + top[0], c.next + top[0] + top[1]] as const } : c));
const record: fc.Arbitrary<CursorRecord> = fc.record({
  sink: fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/),
  at: fc.nat(),
  chains: fc.uniqueArray(chain, { maxLength: 40, selector: (c) => `${toHex(c.author)}/${c.stream}` }),
});

const inBlock = (body: unknown) =>
  ({
    version: 1,
    author: new Uint8Array(32),
    stream: '$export',
    seq: 0,
    lamport: 1,
    prev: null,
    parents: [],
    policy: '$export',
    kind: 'cursor',
    body,
  }) as never;

describe('cursor block body', () => {
  it('[property] round-trips through canonical CBOR and a block, one encoding whatever the entry order', () => {
    fc.assert(
      fc.property(record, (r) => {
        const bytes = encodeCanonical(cursorBody(r) as never);
        const shuffled = encodeCanonical(cursorBody({ ...r, chains: [...r.chains].reverse() }) as never);
        expect(toHex(shuffled)).toBe(toHex(bytes));
        const decoded = decodeCbor(bytes);
        if (!decoded.ok) throw new Error(decoded.error.message);
        const back = decodeCursorBody(decoded.value);
        if (!back.ok) throw new Error(back.error.message);
        expect(back.value.sink).toBe(r.sink);
        expect(back.value.at).toBe(r.at);
        const key = (c: CursorChain) => `${toHex(c.author)}/${c.stream}/${c.next}/${c.top?.join('-') ?? ''}`;
        expect(back.value.chains.map(key).sort()).toEqual(r.chains.map(key).sort());
        const enc = encodeBlock(inBlock(cursorBody(r)));
        const b = decodeBlock(enc);
        if (!b.ok) throw new Error(b.error.message);
        expect(b.value.kind).toBe('cursor');
        expect(decodeCursorBody(b.value.body as never).ok).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('[property] arbitrary bodies and bytes never throw: a result either way', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const c = decodeCbor(bytes);
        if (c.ok) expect(typeof decodeCursorBody(c.value).ok).toBe('boolean');
      }),
      { numRuns: 500 },
    );
    const bad = [
      new Map([[1, 's']]),
      new Map<number, unknown>([
        [1, 's'],
        [2, 1],
        [3, [[new Uint8Array(31), 'x', 0]]],
      ]),
      new Map<number, unknown>([
        [1, 's'],
        [2, 1],
        [3, [[new Uint8Array(32), 'x', 5, 5, 7]]], // top must start above next (a gap)
      ]),
      new Map<number, unknown>([
        [1, 's'],
        [2, 1],
        [
          3,
          [
            [new Uint8Array(32).fill(1), 'x', 0],
            [new Uint8Array(32), 'x', 0],
          ],
        ], // unsorted
      ]),
      new Map<number, unknown>([
        [1, 's'],
        [2, -1],
        [3, []],
      ]),
      new Map<number, unknown>([
        [1, 's'],
        [2, 1],
        [3, []],
        [4, 0],
      ]),
    ];
    for (const b of bad) expect(decodeCursorBody(b as never).ok).toBe(false);
  });

  it('refuses to encode a malformed record (typed error) and more than MAX_CURSOR_CHAINS chains', () => {
    const c = { author: new Uint8Array(32), stream: 'default', next: 1 };
    expect(() => cursorBody({ sink: 'bad name', at: 0, chains: [] })).toThrow(ProtocolUsageError);
    expect(() => cursorBody({ sink: 's', at: 0, chains: [c, c] })).toThrow(/twice/);
    const many = Array.from({ length: MAX_CURSOR_CHAINS + 1 }, (_, i) => ({ ...c, stream: `s${i}` }));
    expect(() => cursorBody({ sink: 's', at: 0, chains: many })).toThrow(ProtocolUsageError);
  });
});

const exportCursor: fc.Arbitrary<ExportCursor> = fc
  .dictionary(
    fc.constantFrom(...['aa', 'bb', 'cc'].map((a) => `${a.repeat(32)}/default`), `${'dd'.repeat(32)}/telemetry`),
    fc.record({
      done: fc.integer({ min: -1, max: 50 }),
      top: fc.option(fc.tuple(fc.integer({ min: 2, max: 10 }), fc.nat({ max: 10 })), { nil: undefined }),
    }),
  )
  .map((d) =>
    Object.fromEntries(
      Object.entries(d).map(([k, c]) => [
        k,
        c.top
          ? { done: c.done, top: [c.done + c.top[0], c.done + c.top[0] + c.top[1]] as [number, number] }
          : { done: c.done },
      ]),
    ),
  );

describe('export cursors in the log', () => {
  it('[property] an export cursor survives the block record', () => {
    fc.assert(
      fc.property(exportCursor, (c) => {
        expect(cursorOf(cursorRecord('warehouse', c, 0))).toEqual(c);
      }),
    );
  });

  it('[property] a merge confirms per chain what one of the two confirmed, never less than either', () => {
    fc.assert(
      fc.property(exportCursor, exportCursor, (a, b) => {
        const m = mergeCursors(a, b);
        for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
          expect([a[k], b[k]]).toContainEqual(m[k]);
          expect(m[k]!.done).toBe(Math.max(a[k]?.done ?? -1, b[k]?.done ?? -1));
        }
        expect(mergeCursors(m, a)).toEqual(m);
        expect(mergeCursors(m, b)).toEqual(m);
      }),
    );
  });
});

describe('export.sinks[].owner in the config', () => {
  it('names this gateway or a sync peer, and defaults the takeover timings', () => {
    const sink = (owner: string) => ({
      export: { sinks: [{ type: 'postgres', name: 'warehouse', url: 'postgres://u@/db?host=/run/postgresql', owner }] },
    });
    const c = validateConfig({ gateway: { id: 'gw-a' }, ...sink('gw-a') });
    expect(c.export.sinks[0]).toMatchObject({ owner: 'gw-a', takeoverAfterSeconds: 60, cursorBlockSeconds: 10 });
    expect(() => validateConfig({ gateway: { id: 'gw-a' }, ...sink('gw-z') })).toThrow(ConfigError);
    expect(() => validateConfig({ gateway: { id: 'gw-a' }, ...sink('gw-z') })).toThrow(/owner.*gw-z.*sync\.peers/s);
  });
});

describe('cursor blocks in a real log', () => {
  it('keeps each sink latest cursor block and prunes the superseded ones once enough piled up', async () => {
    const closers: (() => Promise<void> | void)[] = [];
    try {
      const node = logNode(randomBytes(32), [], [], closers);
      const cursors = new CursorLog(node.log, (a) => a());
      const sinks = new Set(['warehouse', 'cloud']);
      const chain = `${'ab'.repeat(32)}/default`;
      for (let i = 0; i < 300; i++)
        await cursors.append(i % 10 === 0 ? 'cloud' : 'warehouse', { [chain]: { done: i } }, 1_000 + i);
      await node.log.settled();
      const self = node.log.author;
      const mark = node.log.mark(self, CURSOR_STREAM);
      expect(mark).toBeGreaterThan(0);
      expect(node.log.streamRange(self, CURSOR_STREAM)!.count).toBeLessThanOrEqual(300 - mark + 1);
      // Whatever was pruned, the latest block of each sink is held: a restart (or a sibling) resumes from it.
      const held = new CursorLog(node.log, (a) => a()).held(sinks);
      const latest = (sink: string) => held.filter((c) => c.sink === sink).at(-1)!.cursor[chain]!.done;
      expect(latest('warehouse')).toBe(299);
      expect(latest('cloud')).toBe(290);
      expect(held.every((c) => c.seq >= mark)).toBe(true);
    } finally {
      for (const c of closers) await c();
    }
  });
});

describe('the $export stream under a policy file', () => {
  it('goes to sibling gateways, not to cloud peers or unknown keys', () => {
    const [a, b, cloud, stranger] = [0, 1, 2, 3].map(() => publicKeyFromSeed(randomBytes(32)));
    const set = parsePolicyText(
      `principals:
  gw-a: { key: "${publicKeyToDidKey(a!)}", kind: gateway }
  gw-b: { key: "${publicKeyToDidKey(b!)}", kind: gateway }
  lake: { key: "${publicKeyToDidKey(cloud!)}", kind: cloud }
policies:
  telemetry: { reach: cloud, relations: { holder: ["*"] } }
`,
      'p.yaml',
    );
    const filter = new SyncPolicy(new Permissions(set, ''), { key: toHex(a!) });
    expect(filter.mayHold(toHex(b!), toHex(a!), CURSOR_STREAM).allowed).toBe(true);
    expect(filter.mayHold(toHex(cloud!), toHex(a!), CURSOR_STREAM)).toMatchObject({
      allowed: false,
      missing: 'gateway',
    });
    expect(filter.mayHold(toHex(stranger!), toHex(a!), CURSOR_STREAM).allowed).toBe(false);
  });
});
