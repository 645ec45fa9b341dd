/** The `machine:` section of a rule: named states, guarded transitions, latches, watchdog. */
import { condition, parseActions, parseAggregates, parseWindow, positive } from './parse-common.js';
import type { Field } from './reader.js';
import type { LatchSpec, MachineRule, StateSpec, TransitionSpec } from './types.js';

export function parseMachine(
  f: Field,
): Pick<MachineRule, 'initial' | 'states' | 'transitions' | 'latches' | 'watchdog' | 'window' | 'aggregates'> {
  f.object(['initial', 'states', 'transitions', 'latches', 'watchdog', 'window', 'aggregate']);
  const window = parseWindow(f.get('window'));
  if (window?.kind === 'tumbling')
    f.get('window').fail('a machine reads a sliding or count window (a tumbling one would delay its frames)');
  const aggregates = parseAggregates(f.get('aggregate'));
  if (aggregates.length > 0 && !window) f.get('aggregate').fail('aggregates need a window');
  const states = new Map<string, StateSpec>();
  const sf = f.get('states').object(f.get('states').keys());
  for (const name of sf.keys()) {
    const s = sf.get(name);
    if (!s.present) {
      states.set(name, { minDwellMs: 0, onEnter: [] });
      continue;
    }
    s.object(['minDwell', 'onEnter']);
    states.set(name, { minDwellMs: s.get('minDwell').optDurationMs() ?? 0, onEnter: parseActions(s.get('onEnter')) });
  }
  if (states.size === 0) f.get('states').fail('a machine needs at least one state');
  const state = (g: Field, any = false): string => {
    const s = g.string();
    if (!(states.has(s) || (any && s === '*')))
      g.fail(`no state "${s}" (states: ${[...states.keys()].join(', ')})`, 'rules/reference');
    return s;
  };
  const initial = state(f.get('initial'));
  const transitions: TransitionSpec[] = f
    .get('transitions')
    .optList()
    .map((t) => {
      t.object(['from', 'to', 'when', 'after']);
      const when = t.get('when').present ? condition(t.get('when')) : undefined;
      const afterMs = t.get('after').optDurationMs();
      if (when === undefined && afterMs === undefined) t.fail('a transition needs a when, an after, or both');
      return {
        from: state(t.get('from'), true),
        to: state(t.get('to')),
        ...(when !== undefined && { when }),
        ...(afterMs !== undefined && { afterMs }),
      };
    });
  const lf = f.get('latches');
  const latches: LatchSpec[] = lf.present
    ? lf
        .object(lf.keys())
        .keys()
        .map((name) => {
          const l = lf.get(name).object(['set', 'clearOnEnter']);
          if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name))
            l.fail(`latch name "${name}" must be an identifier (it is read as latch.${name})`);
          return {
            name,
            set: condition(l.get('set')),
            clearOnEnter: l
              .get('clearOnEnter')
              .optList()
              .map((s) => state(s)),
          };
        })
    : [];
  const wd = f.get('watchdog');
  const watchdog = wd.present
    ? (wd.object(['silence', 'devices', 'state']),
      { silenceMs: positive(wd.get('silence')), devices: wd.get('devices').strings(), state: state(wd.get('state')) })
    : undefined;
  return {
    initial,
    states,
    transitions,
    latches,
    aggregates,
    ...(window && { window: window as Exclude<typeof window, { kind: 'tumbling' }> }),
    ...(watchdog && { watchdog }),
  };
}
