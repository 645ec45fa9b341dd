/**
 * A typed reader over one parsed YAML document: every accessor knows its path, so an error
 * names the file, the rule, the field and the line (via yaml's LineCounter).
 */
import { type Document, isNode, LineCounter, parseDocument } from 'yaml';
import { parseDuration } from '../../protocols/duration.js';
import { RuleError, type RuleErrorCode } from './errors.js';

type Path = readonly (string | number)[];

export class YamlSource {
  private constructor(
    readonly file: string,
    readonly doc: Document,
    private readonly lines: LineCounter,
  ) {}

  static parse(file: string, text: string): YamlSource {
    const lines = new LineCounter();
    const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
    const err = doc.errors[0];
    if (err) {
      const pos = lines.linePos(err.pos[0]);
      throw new RuleError('rules/yaml', { file, line: pos.line, col: pos.col }, err.message.split('\n')[0]!);
    }
    return new YamlSource(file, doc, lines);
  }

  /** Line and column of the node at `path` (or of its nearest existing parent). */
  position(path: Path): { line?: number; col?: number } {
    for (let n = path.length; n >= 0; n--) {
      const node: unknown = this.doc.getIn(path.slice(0, n), true);
      if (isNode(node) && node.range) {
        const p = this.lines.linePos(node.range[0]);
        return { line: p.line, col: p.col };
      }
    }
    return {};
  }
}

const fieldName = (p: Path): string =>
  p.reduce<string>((s, k) => (typeof k === 'number' ? `${s}[${k}]` : s ? `${s}.${k}` : k), '');

/** A value at a path inside one rule (or the file's top level). */
export class Field {
  constructor(
    readonly src: YamlSource,
    readonly value: unknown,
    /** Path from the document root. */
    readonly path: Path,
    /** The rule's id for errors, and where its own path starts. */
    readonly rule?: { readonly id: string; readonly depth: number },
  ) {}

  fail(detail: string, code: RuleErrorCode = 'rules/shape'): never {
    const inner = this.rule ? this.path.slice(this.rule.depth) : this.path;
    throw new RuleError(
      code,
      {
        file: this.src.file,
        rule: this.rule?.id,
        field: inner.length ? fieldName(inner) : undefined,
        ...this.src.position(this.path),
      },
      detail,
    );
  }

  get(key: string | number): Field {
    const v =
      typeof key === 'number'
        ? Array.isArray(this.value)
          ? this.value[key]
          : undefined
        : isRecord(this.value) && Object.hasOwn(this.value, key)
          ? this.value[key]
          : undefined;
    return new Field(this.src, v, [...this.path, key], this.rule);
  }

  inRule(id: string): Field {
    return new Field(this.src, this.value, this.path, { id, depth: this.path.length });
  }

  get present(): boolean {
    return this.value !== undefined && this.value !== null;
  }

  /** A mapping whose keys are all in `allowed`. */
  object(allowed: readonly string[]): this {
    if (!isRecord(this.value)) this.fail('must be a mapping');
    for (const k of Object.keys(this.value)) {
      if (!allowed.includes(k))
        this.get(k).fail(`unknown key "${k}" (allowed: ${allowed.join(', ')})`, 'rules/unknown-key');
    }
    return this;
  }

  keys(): string[] {
    return isRecord(this.value) ? Object.keys(this.value) : [];
  }

  list(): Field[] {
    if (!Array.isArray(this.value)) this.fail('must be a list');
    return this.value.map((_, i) => this.get(i));
  }

  optList(): Field[] {
    return this.present ? this.list() : [];
  }

  string(): string {
    if (typeof this.value !== 'string' || this.value.length === 0) this.fail('must be a non-empty string');
    return this.value;
  }

  optString(): string | undefined {
    return this.present ? this.string() : undefined;
  }

  id(): string {
    const s = this.string();
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(s))
      this.fail(`"${s}" is not an id (1..64 of [A-Za-z0-9._-], starting with a letter or digit)`);
    return s;
  }

  strings(): string[] {
    return this.list().map((f) => f.string());
  }

  durationMs(): number {
    const ms = parseDuration(this.value);
    if (ms === undefined || ms === Infinity)
      this.fail(`must be a duration such as 500ms, 5s, 2m, 1h (got ${JSON.stringify(this.value)})`);
    return ms;
  }

  optDurationMs(): number | undefined {
    return this.present ? this.durationMs() : undefined;
  }

  positiveInt(): number {
    if (typeof this.value !== 'number' || !Number.isInteger(this.value) || this.value <= 0)
      this.fail('must be a positive integer');
    return this.value;
  }

  scalar(): number | boolean | string {
    const v = this.value;
    if (typeof v === 'number' || typeof v === 'boolean' || (typeof v === 'string' && v.length > 0)) return v;
    this.fail('must be a number, boolean or non-empty string');
  }

  oneOf<T extends string>(allowed: readonly T[], dflt: T): T {
    if (!this.present) return dflt;
    if (!allowed.includes(this.value as T)) this.fail(`must be one of ${allowed.join(', ')}`);
    return this.value as T;
  }
}

export const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
