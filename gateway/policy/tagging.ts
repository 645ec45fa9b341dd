/**
 * Tagging at ingest: the first tagging rule that matches a frame names its
 * policy; frames no rule matches get the default policy. A rule matches when
 * every field it gives matches (globs): `device`, and the registry's `model`
 * and `site` for the device, and `name`/`unit` of at least one SenML record
 * (base name and unit applied); and its CEL `when`, if any, holds for that
 * record (`data.device/model/site/name/unit`).
 *
 * The result is the block's policy tag: `name@version` (the stream is the name),
 * or the bare name for the built-in default (version 0), as before policies.
 */
import type { SenmlRecord } from '../../protocols/index.js';
import type { PolicySet, TaggingRule } from './permissions.js';

export interface TagInput {
  readonly device: string;
  readonly model?: string | undefined;
  readonly site?: string | undefined;
  /** The frame's SenML records (a reading); none for a command ack. */
  readonly records?: readonly SenmlRecord[] | undefined;
}

/** `name@version`, or `name` for version 0. */
const policyTag = (name: string, version: number): string => (version > 0 ? `${name}@${version}` : name);

export class Tagger {
  private readonly tags: string[];
  private readonly defaultTag: string;
  /** No rule looks at records: skip resolving them. */
  private readonly needRecords: boolean;

  constructor(private readonly set: PolicySet) {
    const tag = (name: string): string => {
      const p = set.policies.get(name);
      return policyTag(name, p?.version ?? 0);
    };
    this.tags = set.tagging.map((r) => tag(r.policy));
    this.defaultTag = tag(set.defaultPolicy);
    this.needRecords = set.tagging.some(
      (r) => r.name !== undefined || r.unit !== undefined || r.condition !== undefined,
    );
  }

  /** The policy tag of one frame. Never throws. */
  tag(f: TagInput): string {
    const rules = this.set.tagging;
    if (rules.length === 0) return this.defaultTag;
    const records = this.needRecords ? namesAndUnits(f.records) : [];
    for (let i = 0; i < rules.length; i++) if (matches(rules[i]!, f, records)) return this.tags[i]!;
    return this.defaultTag;
  }
}

function matches(r: TaggingRule, f: TagInput, records: readonly { name: string; unit: string }[]): boolean {
  if (r.device && !r.device.test(f.device)) return false;
  if (r.model && !r.model.test(f.model ?? '')) return false;
  if (r.site && !r.site.test(f.site ?? '')) return false;
  if (!r.name && !r.unit && !r.condition) return true;
  // Record-level: some record must satisfy name, unit and the condition together.
  const recs = records.length > 0 ? records : [{ name: '', unit: '' }];
  for (const rec of recs) {
    if (r.name && !r.name.test(rec.name)) continue;
    if (r.unit && !r.unit.test(rec.unit)) continue;
    if (
      r.condition &&
      !r.condition.test({
        data: { device: f.device, model: f.model ?? '', site: f.site ?? '', name: rec.name, unit: rec.unit },
      })
    )
      continue;
    return true;
  }
  return false;
}

/** Resolved names and units (RFC 8428 §4.6: bn + n, u else bu) without resolving values. */
function namesAndUnits(records: readonly SenmlRecord[] | undefined): { name: string; unit: string }[] {
  if (!records) return [];
  const out: { name: string; unit: string }[] = [];
  let bn = '';
  let bu = '';
  for (const r of records) {
    if (r.bn !== undefined) bn = r.bn;
    if (r.bu !== undefined) bu = r.bu;
    if (
      r.n === undefined &&
      r.v === undefined &&
      r.vs === undefined &&
      r.vb === undefined &&
      r.vd === undefined &&
      r.s === undefined
    )
      continue;
    out.push({ name: bn + (r.n ?? ''), unit: r.u ?? bu });
  }
  return out;
}
