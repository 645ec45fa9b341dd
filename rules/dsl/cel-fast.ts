/**
 * A fast path for the simple conditions most rules are made of (`agg.t > 60.0`,
 * `has(agg.m) && agg.m < 30.0 || v.vib >= 4`): comparisons of numeric fields of `v` / `agg`,
 * `now`, `dwell` and number literals, `has(...)`, `!(...)`, `&&`, `||`, parentheses. The
 * interpreter costs a few hundred ns a condition; a replay evaluates millions.
 *
 * It answers only when sure: every field it reads is present and a number. Anything else
 * (a missing key, a bool or string value, a map given as a Map) answers undefined, and the
 * caller asks cel-js, whose result and error messages therefore stay the condition's.
 * `&&` and `||` absorb an unknown side as CEL absorbs an error (`false && x` is false,
 * `true || x` is true, either order). Expressions outside this grammar get no fast path.
 * test/unit/rules-cel-fast.test.ts holds it to cel-js on generated expressions and inputs.
 */

/** A compiled condition: true, false, or undefined when cel-js must decide. */
export type FastCondition = (ctx: object) => boolean | undefined;
type Num = (ctx: object) => number | undefined;

const MAPS = new Set(['v', 'agg']);
const NUMBERS = new Set(['now', 'dwell']);
// Ints within ±2^53 (CEL ints are int64; larger ones would lose precision as a JS number).
const NUMBER = /^(?:\d+\.\d+(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+|\d{1,15})/;
const IDENT = /^[A-Za-z_][A-Za-z0-9_]*/;
const TOKEN = /^(?:&&|\|\||>=|<=|==|!=|[<>!().])/;

function tokens(src: string): string[] | undefined {
  const out: string[] = [];
  let s = src;
  while (s.length > 0) {
    const ws = /^[ \t\r\n]+/.exec(s);
    if (ws) {
      s = s.slice(ws[0].length);
      continue;
    }
    // a minus sign only in front of a number literal (there is no subtraction here)
    const neg = s.startsWith('-') ? NUMBER.exec(s.slice(1)) : null;
    const tok = neg ? `-${neg[0]}` : (NUMBER.exec(s) ?? IDENT.exec(s) ?? TOKEN.exec(s))?.[0];
    if (tok === undefined) return undefined;
    out.push(tok);
    s = s.slice(tok.length);
  }
  return out;
}

/** The fast path of a condition cel-js accepted, or undefined when it is outside the grammar. */
export function compileFast(source: string): FastCondition | undefined {
  const t = tokens(source);
  if (!t) return undefined;
  let i = 0;
  const peek = (): string | undefined => t[i];
  const eat = (x: string): boolean => (t[i] === x ? (i++, true) : false);

  const field = (): { map: string; key: string } | string | undefined => {
    const id = peek();
    if (id === undefined || !IDENT.test(id)) return undefined;
    i++;
    if (NUMBERS.has(id)) return id;
    if (!MAPS.has(id) || !eat('.')) return undefined;
    const key = peek();
    if (key === undefined || !IDENT.test(key)) return undefined;
    i++;
    return { map: id, key };
  };
  const operand = (): Num | undefined => {
    const x = peek();
    if (x === undefined) return undefined;
    if (/^-?\d/.test(x)) {
      i++;
      const n = Number(x);
      return () => n;
    }
    const f = field();
    if (f === undefined) return undefined;
    if (typeof f === 'string')
      return (ctx) => {
        const n = (ctx as Record<string, unknown>)[f];
        return typeof n === 'number' ? n : undefined;
      };
    const { map, key } = f;
    return (ctx) => {
      const m = (ctx as Record<string, unknown>)[map];
      if (m === null || typeof m !== 'object' || m instanceof Map || !Object.hasOwn(m, key)) return undefined;
      const n = (m as Record<string, unknown>)[key];
      return typeof n === 'number' ? n : undefined;
    };
  };
  const compare = (a: Num, op: string, b: Num): FastCondition | undefined => {
    const both =
      (f: (x: number, y: number) => boolean): FastCondition =>
      (ctx) => {
        const x = a(ctx);
        if (x === undefined) return undefined;
        const y = b(ctx);
        return y === undefined ? undefined : f(x, y);
      };
    switch (op) {
      case '>':
        return both((x, y) => x > y);
      case '>=':
        return both((x, y) => x >= y);
      case '<':
        return both((x, y) => x < y);
      case '<=':
        return both((x, y) => x <= y);
      case '==':
        return both((x, y) => x === y);
      case '!=':
        return both((x, y) => x !== y);
      default:
        return undefined;
    }
  };
  const has = (): FastCondition | undefined => {
    if (!eat('(')) return undefined;
    const f = field();
    if (f === undefined || typeof f === 'string' || !eat(')')) return undefined;
    const { map, key } = f;
    return (ctx) => {
      const m = (ctx as Record<string, unknown>)[map];
      if (m === null || typeof m !== 'object' || m instanceof Map) return undefined;
      // present: true; absent: cel-js says (it knows what counts as a key)
      return Object.hasOwn(m, key) && (m as Record<string, unknown>)[key] !== undefined ? true : undefined;
    };
  };
  // unary: '!' '(' expr ')' | '(' expr ')' | has(field) | operand relop operand
  const unary = (): FastCondition | undefined => {
    if (eat('!')) {
      // `!x > 1` is `(!x) > 1` in CEL: only a parenthesised operand here
      if (peek() !== '(') return undefined;
      const inner = unary();
      return (
        inner &&
        ((ctx) => {
          const r = inner(ctx);
          return r === undefined ? undefined : !r;
        })
      );
    }
    if (eat('(')) {
      const inner = or();
      return inner && eat(')') ? inner : undefined;
    }
    if (peek() === 'has') {
      i++;
      return has();
    }
    const a = operand();
    const op = peek();
    if (!a || op === undefined) return undefined;
    i++;
    const b = operand();
    return b && compare(a, op, b);
  };
  /**
   * A left-to-right chain of `op` over `next`: `zero` (false for &&, true for ||) absorbs an
   * unknown side as CEL absorbs an error; otherwise known only when both sides are `!zero`.
   */
  const chain = (next: () => FastCondition | undefined, op: string, zero: boolean) => (): FastCondition | undefined => {
    let l = next();
    while (l && eat(op)) {
      const r = next();
      if (!r) return undefined;
      const x = l;
      l = (ctx) => {
        const p = x(ctx);
        if (p === zero) return zero;
        const q = r(ctx);
        if (q === zero) return zero;
        return p === !zero && q === !zero ? !zero : undefined;
      };
    }
    return l;
  };
  const and = chain(unary, '&&', false);
  const or = chain(and, '||', true);
  const c = or();
  return c && i === t.length ? c : undefined;
}
