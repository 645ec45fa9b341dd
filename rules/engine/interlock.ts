/**
 * Interlocks: sets of commanded states of which at most one may hold at a time (two greens
 * at a crossing). The engine keeps the last value it commanded per (device, actuator) across
 * every rule, and refuses a command that would make a second member of a set hold.
 */
import type { CommandIntent } from '../decision.js';
import type { InterlockSpec } from '../dsl/types.js';

const key = (device: string, actuator: string): string => `${device}\u0000${actuator}`;

export class InterlockGuard {
  private readonly commanded = new Map<string, CommandIntent['value']>();

  constructor(private readonly interlocks: readonly InterlockSpec[]) {}

  /** Undefined (and the command is now in effect) or why it is refused. */
  admit(cmd: CommandIntent): string | undefined {
    for (const il of this.interlocks) {
      if (!il.never.some((e) => e.device === cmd.device && e.actuator === cmd.actuator && e.value === cmd.value))
        continue;
      for (const o of il.never) {
        if (o.device === cmd.device && o.actuator === cmd.actuator) continue;
        if (this.commanded.get(key(o.device, o.actuator)) === o.value) {
          return `interlock "${il.id}" refused ${cmd.device}.${cmd.actuator}=${String(cmd.value)}: ${o.device}.${o.actuator}=${String(o.value)} is in effect`;
        }
      }
    }
    this.commanded.set(key(cmd.device, cmd.actuator), cmd.value);
    return undefined;
  }

  /** The last commanded value, if any. */
  state(device: string, actuator: string): CommandIntent['value'] | undefined {
    return this.commanded.get(key(device, actuator));
  }
}
