// The siblings panel: each sibling's sync state, this gateway's own forked streams and the
// last audit, from /api/siblings.

/** "3 s ago", "5 min ago", … */
export function ago(iso) {
  if (!iso) return 'never';
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return new Date(iso).toLocaleString();
}

export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else e.setAttribute(k, v);
  }
  e.append(...children.filter((c) => c !== null && c !== undefined));
  return e;
}

function behindText(b) {
  if (!b) return 'lag unknown (no exchange yet)';
  return b.blocks === 0 ? 'up to date' : `${b.blocks} blocks behind (${b.seconds} s)`;
}

function refusalsText(r) {
  const e = Object.entries(r);
  return e.length === 0 ? 'no refusals' : `refused: ${e.map(([k, n]) => `${k} ×${n}`).join(', ')}`;
}

function renderSibling(s) {
  return el(
    'li',
    { 'data-sibling': s.id, 'data-connected': String(s.connected) },
    el('span', { class: 'name' }, s.id),
    ' ',
    el('span', { class: 'state' }, s.connected ? 'connected' : 'not connected'),
    ` · ${s.transport ?? 'no transport'}${s.dials ? '' : ' (dials us)'}`,
    ' · last exchange ',
    el('span', { class: 'last-exchange' }, ago(s.lastExchangeAt)),
    ' · ',
    el('span', { class: 'behind' }, behindText(s.behind)),
    ' · ',
    el('span', { class: 'refusals' }, refusalsText(s.refusals)),
    s.lastError ? el('div', { class: 'error' }, `last error: ${s.lastError}`) : null,
  );
}

/** Fills the panel (`#site`) from an /api/siblings body. */
export function renderSite($, body) {
  $('site').hidden = !body.sync && body.ownForks.length === 0 && body.audit === null;
  $('sibling-list').replaceChildren(...body.siblings.map(renderSibling));
  $('own-forks').hidden = body.ownForks.length === 0;
  $('own-forks').textContent = `this gateway's own forked streams: ${body.ownForks.join(', ')}`;
  const a = body.audit;
  $('audit-state').dataset.ok = a ? String(a.ok) : '';
  $('audit-state').textContent = a
    ? `last audit ${ago(a.at)}: ${a.ok ? 'clean' : `${a.faults} faults`} (${a.blocks} blocks, ${a.frames} frames)`
    : 'no audit yet (gateway audit verify)';
}
