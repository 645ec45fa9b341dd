/**
 * CEL conditions (`when:` of policies and tagging rules) through
 * @marcbachmann/cel-js: parsed and type-checked once at load against the
 * variables below, evaluated per frame or request. An evaluation error (a
 * missing key, a type error at run time) counts as "does not hold": a
 * condition never throws into ingest or sync.
 */
import { Environment } from '@marcbachmann/cel-js';

/** The variables a condition may use. */
export interface ConditionInput {
  /** The principal asking: id, did, kind, site, roles, groups (policy conditions only). */
  readonly principal?: Record<string, unknown>;
  /** The action asked for ('' when a relation is checked). */
  readonly action?: string;
  readonly relation?: string;
  /** The purpose asked for ('' if none). */
  readonly purpose?: string;
  /** This gateway's site. */
  readonly site?: string;
  /** The frame: device, model, site, name, unit ('' when unknown). */
  readonly data?: Record<string, unknown>;
}

export interface CompiledCondition {
  readonly text: string;
  test(input: ConditionInput): boolean;
}

export class ConditionError extends Error {
  constructor(
    readonly code: 'policy/cel-syntax' | 'policy/cel-type',
    message: string,
  ) {
    super(message);
    this.name = 'ConditionError';
  }
}

let env: Environment | undefined;
function environment(): Environment {
  env ??= new Environment({
    limits: { maxAstNodes: 2000, maxDepth: 64, maxListElements: 256, maxMapEntries: 256, maxCallArguments: 16 },
  })
    .registerVariable('principal', 'map')
    .registerVariable('action', 'string')
    .registerVariable('relation', 'string')
    .registerVariable('purpose', 'string')
    .registerVariable('site', 'string')
    .registerVariable('data', 'map');
  return env;
}

const EMPTY = { principal: {}, action: '', relation: '', purpose: '', site: '', data: {} };

/** Parses and type-checks a condition; throws ConditionError (syntax or type) with the library's message. */
export function compileCondition(text: string): CompiledCondition {
  const e = environment();
  let fn: ReturnType<Environment['parse']>;
  try {
    fn = e.parse(text);
  } catch (err) {
    throw new ConditionError('policy/cel-syntax', firstLine((err as Error).message));
  }
  const checked = e.check(text);
  if (!checked.valid) throw new ConditionError('policy/cel-type', firstLine(checked.error?.message ?? 'type error'));
  if (checked.type !== 'bool' && checked.type !== 'dyn')
    throw new ConditionError('policy/cel-type', `must be a bool expression, not ${checked.type}`);
  return {
    text,
    test(input: ConditionInput): boolean {
      try {
        return fn({ ...EMPTY, ...input }) === true;
      } catch {
        return false;
      }
    },
  };
}

const firstLine = (s: string): string => s.split('\n')[0]!.trim();
