/** Action specs → decision drafts, with `{{path}}` filled from the evaluation context. */
import type { Action } from '../decision.js';
import type { CelContext } from '../dsl/cel.js';
import type { ActionSpec, DecisionDraft, Episode } from '../dsl/types.js';
import type { FrameRef } from '../decision.js';

const fmt = (v: unknown): string =>
  typeof v === 'number'
    ? String(Math.round(v * 1000) / 1000)
    : v === undefined
      ? ''
      : typeof v === 'object'
        ? JSON.stringify(v)
        : String(v);

function lookup(ctx: CelContext, path: string): unknown {
  let cur: unknown = ctx;
  for (const k of path.split('.')) {
    if (cur === null || typeof cur !== 'object' || !Object.hasOwn(cur, k)) return undefined;
    cur = (cur as Record<string, unknown>)[k];
  }
  return cur;
}

/** `{{agg.vib}}` → the value, formatted; unknown paths become empty. */
function fill(text: string, ctx: CelContext): string {
  return text.includes('{{')
    ? text.replace(/\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}/g, (_, p: string) => fmt(lookup(ctx, p)))
    : text;
}

function toAction(a: ActionSpec, ctx: CelContext): Action {
  switch (a.kind) {
    case 'command':
      return {
        kind: 'command',
        command: {
          device: fill(a.device, ctx),
          actuator: a.actuator,
          value: typeof a.value === 'string' ? fill(a.value, ctx) : a.value,
          ttlMs: a.ttlMs,
        },
      };
    case 'publish':
      return { kind: 'publish', topic: fill(a.topic, ctx), payload: fill(a.payload, ctx) };
    case 'alert':
      return { kind: 'alert', message: fill(a.message, ctx) };
    case 'settings':
      return { kind: 'settings', device: fill(a.device, ctx), values: a.values };
  }
}

export function drafts(
  actions: readonly ActionSpec[],
  ctx: CelContext,
  inputs: readonly FrameRef[],
  reason: string,
  episode?: Episode,
): DecisionDraft[] {
  return actions.map((a) => ({ inputs, reason, action: toAction(a, ctx), ...(episode && { episode }) }));
}

/** The values a reason quotes: aggregates and the frame's readings. */
export function seen(ctx: CelContext): string {
  const parts = [
    ...Object.entries(ctx.agg).map(([k, v]) => `agg.${k}=${fmt(v)}`),
    ...Object.entries(ctx.v).map(([k, v]) => `v.${k}=${fmt(v)}`),
  ];
  return parts.length ? ` [${ctx.device ? `${ctx.device}: ` : ''}${parts.join(', ')}]` : '';
}
