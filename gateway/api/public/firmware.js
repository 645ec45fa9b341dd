// The firmware panel: each rollout's state, progress per step and per device, from /api/firmware.
import { el } from './site.js';

const ENDED = ['confirmed', 'rolled-back', 'failed'];
const sum = (counts, states) => states.reduce((n, s) => n + (counts[s] ?? 0), 0);

function renderStep(r, i) {
  const c = r.stageCounts[i];
  const size = r.stages[i] - (r.stages[i - 1] ?? 0);
  const ended = sum(c, ENDED);
  return el(
    'li',
    { 'data-step': String(i), 'data-current': String(i === r.stage) },
    `step ${i} · ${r.stages[i]} device${r.stages[i] === 1 ? '' : 's'} `,
    el('progress', { max: String(Math.max(1, size)), value: String(ended) }),
    ` ${sum(c, ['confirmed'])} confirmed, ${sum(c, ['rolled-back', 'failed'])} failed of ${size}`,
  );
}

function renderDevice([id, p]) {
  return el(
    'li',
    { 'data-fw-device': id, 'data-state': p.state },
    el('span', { class: 'name' }, id),
    ' ',
    el('span', { class: 'state' }, p.state === 'downloading' ? `downloading ${p.percent} %` : p.state),
    p.reason ? el('span', { class: 'muted' }, ` (${p.reason})`) : null,
  );
}

function renderRollout(r) {
  return el(
    'li',
    { 'data-rollout': r.id, 'data-state': r.state },
    el('span', { class: 'name' }, r.id),
    ` ${r.model ?? '?'} ${r.version ?? '?'} · `,
    el('span', { class: 'state' }, r.state),
    ` · stage ${r.stage} of ${r.stages.length}${r.window ? ` · offers ${r.window}` : ''}`,
    el('ul', { class: 'steps' }, ...r.stages.map((_, i) => renderStep(r, i))),
    el(
      'details',
      {},
      el('summary', {}, `${Object.keys(r.devices).length} devices`),
      el('ul', { class: 'fw-devices' }, ...Object.entries(r.devices).map(renderDevice)),
    ),
  );
}

/** Fills the panel (`#firmware`) from an /api/firmware body; hidden while there is no rollout. */
export function renderFirmware($, body) {
  $('firmware').hidden = body.rollouts.length === 0;
  // Open device lists stay open across refreshes.
  const open = new Set(
    [...$('rollout-list').querySelectorAll('li[data-rollout]')]
      .filter((li) => li.querySelector('details')?.open)
      .map((li) => li.dataset.rollout),
  );
  $('rollout-list').replaceChildren(...body.rollouts.map(renderRollout));
  for (const li of $('rollout-list').querySelectorAll('li[data-rollout]'))
    if (open.has(li.dataset.rollout)) li.querySelector('details').open = true;
}
