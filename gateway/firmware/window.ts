/**
 * A rollout's offer window (`--window HH:MM-HH:MM`): minutes of the day in the gateway's local
 * time, start included, end excluded; a start after the end crosses midnight (22:00-06:00).
 * Each gateway reads its own clock, so siblings in one site (one time zone) agree.
 */
import type { OfferWindow } from '../../protocols/firmware-block.js';
import { fail, ok, type Result } from '../../protocols/result.js';

const HHMM = /^([01]\d|2[0-3]):([0-5]\d)$/;

/** `HH:MM-HH:MM` → minutes of the day; refuses an empty window (start = end). */
export function parseOfferWindow(text: string): Result<OfferWindow> {
  const [a, b, ...more] = text.split('-').map((s) => s.trim());
  const s = a === undefined ? null : HHMM.exec(a);
  const e = b === undefined ? null : HHMM.exec(b);
  if (more.length > 0 || !s || !e) return fail('firmware/bad-window', `window "${text}" is not HH:MM-HH:MM (24 h)`);
  const start = Number(s[1]) * 60 + Number(s[2]);
  const end = Number(e[1]) * 60 + Number(e[2]);
  if (start === end) return fail('firmware/bad-window', `window "${text}" is empty (start = end)`);
  return ok({ start, end });
}

/** Whether `now` (local time) is inside the window; no window is always inside. */
export function inOfferWindow(w: OfferWindow | undefined, now: Date): boolean {
  if (!w) return true;
  const m = now.getHours() * 60 + now.getMinutes();
  return w.start < w.end ? m >= w.start && m < w.end : m >= w.start || m < w.end;
}

const hhmm = (m: number): string => `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;

/** The window as the operator wrote it. */
export function formatOfferWindow(w: OfferWindow): string {
  return `${hhmm(w.start)}-${hhmm(w.end)}`;
}
