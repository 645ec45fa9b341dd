/**
 * Sizes of a third-party object's private (#) fields, read through the V8 inspector: the only
 * way to see inside aedes-persistence's stores without changing them (tests only).
 */
import { Session } from 'node:inspector/promises';

/** `.size` (Map/Set) or key count of each private field of `obj` named in `fields`. */
export async function privateSizes(obj: object, fields: readonly string[]): Promise<Record<string, number>> {
  const s = new Session();
  s.connect();
  const g = globalThis as { __privateSizesTarget?: object };
  g.__privateSizesTarget = obj;
  try {
    const { result } = await s.post('Runtime.evaluate', { expression: 'globalThis.__privateSizesTarget' });
    // privateProperties is in the protocol but not in @types/node's return type.
    const props = (await s.post('Runtime.getProperties', { objectId: result.objectId!, ownProperties: true })) as {
      privateProperties?: { name: string; value?: { objectId?: string } }[];
    };
    const out: Record<string, number> = {};
    for (const f of fields) {
      const p = props.privateProperties?.find((x) => x.name === `#${f}`);
      if (!p?.value?.objectId) throw new Error(`no private field #${f}`);
      const r = (await s.post('Runtime.callFunctionOn', {
        objectId: p.value.objectId,
        functionDeclaration:
          'function () { return this instanceof Map || this instanceof Set ? this.size : Object.keys(this).length; }',
        returnByValue: true,
      })) as { result: { value?: unknown } };
      out[f] = r.result.value as number;
    }
    return out;
  } finally {
    delete g.__privateSizesTarget;
    s.disconnect();
  }
}
