/**
 * `node --import tsx bench/policy-tagging.ts [--quick]` (part of `npm run bench`): the cost of
 * tagging a frame with its policy at ingest (gateway/policy/tagging.ts), per frame, next to the
 * per-frame ingest cost measured in the same run on one core: COSE_Sign1 decode + Ed25519
 * verify (node:crypto) + body decode, the work every frame costs before it is stored.
 * Goal: tagging < 5 % of that. Two rule sets: a plant file whose frames mostly
 * match an early glob rule, and the worst case where every frame falls through 10 glob rules
 * and a CEL rule to the default (every rule, and the CEL condition on every record).
 * Writes bench/results/policy-tagging.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { verifyEd25519 } from '../gateway/crypto/ed25519.js';
import { parsePolicyText } from '../gateway/policy/load.js';
import { Tagger } from '../gateway/policy/tagging.js';
import { decodeBody, decodeSign1, type ReadingBody, sigStructure } from '../protocols/index.js';
import { benchDevice } from './lib/devices.js';

const { values } = parseArgs({ options: { quick: { type: 'boolean' } } });
const quick = values.quick === true;
const seconds = quick ? 0.4 : 2;

const devices = Array.from({ length: 64 }, (_, i) => ({
  dev: benchDevice(`dev-${i}`),
  model: ['press-vib-2', 'counter', 'thermo', 'door'][i % 4]!,
}));
const frames = devices.flatMap(({ dev, model }) =>
  Array.from({ length: 16 }, (_, s) => ({
    bytes: dev.frame(1, s),
    device: dev.id,
    model,
    key: Buffer.from(dev.publicKeyHex, 'hex'),
  })),
);

/** Runs `fn` over the frames for about `seconds`; µs per frame. */
function perFrame(fn: (i: number) => void): number {
  let n = 0;
  const end = performance.now() + seconds * 1000;
  const t0 = performance.now();
  while (performance.now() < end) for (let k = 0; k < 256; k++, n++) fn(n % frames.length);
  return ((performance.now() - t0) * 1000) / n;
}

// Baseline: what ingest does to every frame before storing it (one core).
let sink = 0;
const ingestUs = perFrame((i) => {
  const f = frames[i]!;
  const c = decodeSign1(f.bytes);
  if (!c.ok) throw new Error('decode');
  if (!verifyEd25519(f.key, sigStructure(c.value.protectedBytes, c.value.payload), c.value.signature))
    throw new Error('verify');
  const b = decodeBody(c.value.payload);
  if (!b.ok) throw new Error('body');
  sink += b.value.type.length;
});

const inputs = frames.map((f) => {
  const c = decodeSign1(f.bytes);
  const b = c.ok ? decodeBody(c.value.payload) : undefined;
  return {
    device: f.device,
    model: f.model,
    site: 'plant-a',
    records: (b?.ok ? (b.value as ReadingBody).records : []) as ReadingBody['records'],
  };
});

const PLANT = `policies:
  vibration: { version: 3, reach: site }
  traffic: { reach: cloud }
  doors: { confidential: true, reach: site }
  fleet-data: {}
tagging:
  - { policy: vibration, model: "press-vib-*" }
  - { policy: traffic, model: counter, unit: count }
  - { policy: doors, model: door }
default: fleet-data
`;
const WORST = `policies:
  p: {}
  fleet-data: {}
tagging:
${Array.from({ length: 10 }, (_, i) => `  - { policy: p, model: "m${i}-*", name: "*:x${i}*" }`).join('\n')}
  - { policy: p, when: 'data.unit == "count" && data.name.startsWith("lane")' }
default: fleet-data
`;

const rows: {
  figure: string;
  value: number;
  unit: string;
  baseline?: string;
  baselineValue?: number;
  ratio?: number;
  goal?: string;
  pass?: boolean;
}[] = [
  { figure: 'ingest cost per frame, 1 core (COSE decode + Ed25519 verify + body decode)', value: ingestUs, unit: 'us' },
];
for (const [name, text] of [
  ['plant rules (3 glob rules + default)', PLANT],
  ['worst case (10 glob rules + a CEL rule, all fall through)', WORST],
] as const) {
  const tagger = new Tagger(parsePolicyText(text, `${name}.yaml`));
  const counts = new Map<string, number>();
  for (const inp of inputs) counts.set(tagger.tag(inp), (counts.get(tagger.tag(inp)) ?? 0) + 1);
  const us = perFrame((i) => {
    sink += tagger.tag(inputs[i]!).length;
  });
  const ratio = us / ingestUs;
  rows.push({
    figure: `policy tagging per frame: ${name}`,
    value: us,
    unit: 'us',
    baseline: 'ingest cost per frame',
    baselineValue: ingestUs,
    ratio,
    goal: '<= 0.05x',
    pass: ratio <= 0.05,
  });
  console.error(`${name}: tags ${JSON.stringify(Object.fromEntries(counts))}`);
}
if (sink === -1) console.log(sink); // keep the work from being optimised away

console.log(['figure', 'value', 'baseline', 'ratio', 'goal', 'pass'].join('\t'));
for (const r of rows)
  console.log(
    [
      r.figure,
      `${r.value.toFixed(3)} ${r.unit}`,
      r.baselineValue !== undefined ? `${r.baselineValue.toFixed(2)} us` : '',
      r.ratio?.toFixed(4) ?? '',
      r.goal ?? '',
      r.pass === undefined ? '' : r.pass ? 'pass' : 'FAIL',
    ].join('\t'),
  );
mkdirSync(new URL('results/', import.meta.url), { recursive: true });
writeFileSync(
  new URL('results/policy-tagging.json', import.meta.url),
  JSON.stringify({ at: new Date().toISOString(), quick, rows }, null, 2) + '\n',
);
