/** Rule file errors: each names the file, the rule, the field and (for YAML) the line. */

export type RuleErrorCode =
  | 'rules/yaml' // not parseable YAML
  | 'rules/shape' // wrong type or missing field
  | 'rules/unknown-key'
  | 'rules/duplicate'
  | 'rules/cel' // a CEL expression that does not parse or type-check
  | 'rules/reference' // names a state, latch or file that does not exist
  | 'rules/load'; // the file could not be read or imported

export interface RuleErrorAt {
  readonly file: string;
  /** The rule's id (or `rules[3]` before its id is known); undefined for file-level errors. */
  readonly rule?: string | undefined;
  /** Dotted path inside the rule, e.g. `window.size` or `machine.transitions[2].when`. */
  readonly field?: string | undefined;
  readonly line?: number | undefined;
  readonly col?: number | undefined;
}

export class RuleError extends Error {
  constructor(
    readonly code: RuleErrorCode,
    readonly at: RuleErrorAt,
    readonly detail: string,
  ) {
    const where = `${at.file}${at.line !== undefined ? `:${at.line}:${at.col ?? 1}` : ''}`;
    const what = [at.rule !== undefined && `rule "${at.rule}"`, at.field !== undefined && `field "${at.field}"`]
      .filter(Boolean)
      .join(', ');
    super(`${where}: ${what ? `${what}: ` : ''}${detail}`);
    this.name = 'RuleError';
  }
}
