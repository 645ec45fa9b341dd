// The Outpost dashboard: the site's devices (a page at a time, filtered on the server), readings
// with sparklines, rejections, the gateway that heard each, live from /api/feed; the siblings and
// firmware panels.
import { readFeed } from './feed.js';
import { renderFirmware } from './firmware.js';
import { ago, el, renderSite } from './site.js';
import { sparkline } from './sparkline.js';

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = 'outpost.token';
const HISTORY = 60;
const ACT = 'act.';
const SET = 'set.';
/** id → device of the page shown, as /api/devices returns it, updated by the feed. */
const devices = new Map();
/** Devices per page: 48, or ?pageSize=N in the page's URL (1–1000). */
const PAGE = Math.min(1000, Math.max(1, Number(new URLSearchParams(location.search).get('pageSize')) || 48));
/** The page and filters of the device list (server-side: /api/devices?offset&limit&q&heardBy). */
const page = { offset: 0, total: 0, q: '', heardBy: '' };
let onlineTimeoutMs = 30_000;
let token = localStorage.getItem(TOKEN_KEY) ?? '';
let feedAbort;

/** SenML units as people write them. */
const UNIT_TEXT = { Cel: '°C', 'm/s2': 'm/s²', '%EL': '%', dBW: 'dBW', count: '' };

function fmt(v, unit) {
  if (unit !== undefined && unit !== null && unit in UNIT_TEXT) unit = UNIT_TEXT[unit];
  if (v === null || v === undefined) return '—';
  if (typeof v === 'boolean') return v ? 'on' : 'off';
  if (typeof v === 'number') return `${Number.isInteger(v) ? v : v.toFixed(2)}${unit ? ` ${unit}` : ''}`;
  return String(v);
}

/** Online as the server said, and still heard from within the timeout. */
function isOnline(d) {
  if (!d.online) return false;
  const last = d.lastSeen ? Date.parse(d.lastSeen) : 0;
  return Date.now() - last <= onlineTimeoutMs;
}

/**
 * Desired settings vs those the device reports (`set.<key>` records, live from the feed; the
 * desired side from /api/devices): each key with both values, marked pending while they differ.
 */
function renderSettings(d) {
  const reported = new Map(
    d.readings.filter((r) => r.name.startsWith(SET)).map((r) => [r.name.slice(SET.length), r.value]),
  );
  const desired = d.settings?.desired ?? {};
  const keys = [...new Set([...Object.keys(desired), ...reported.keys()])].sort();
  if (keys.length === 0) return null;
  return el(
    'ul',
    { class: 'settings' },
    ...keys.map((k) => {
      const want = desired[k];
      const got = reported.has(k) ? reported.get(k) : (d.settings?.reported?.[k] ?? null);
      const pending = want !== undefined && want.value !== got;
      return el(
        'li',
        {
          'data-setting': k,
          'data-pending': String(pending),
          title: want ? `set by ${want.author} at ${want.at}` : 'reported only',
        },
        el('span', { class: 'name' }, k),
        el('span', { class: 'value' }, want ? fmt(want.value) : fmt(got)),
        pending ? el('span', { class: 'pending' }, ` pending (reports ${fmt(got)})`) : null,
      );
    }),
  );
}

function renderDevice(d) {
  const online = isOnline(d);
  const rej = d.rejections;
  const reasons = Object.entries(rej.byReason)
    .map(([r, n]) => `${r} ×${n}`)
    .join(', ');
  const extras = [
    d.battery ? `battery ${fmt(d.battery.value, d.battery.unit)}` : null,
    d.signal ? `signal ${fmt(d.signal.value, d.signal.unit)}` : null,
  ].filter(Boolean);
  // Actuator states as the device reports them (`act.<name>` records in its readings).
  const actuators = d.readings.filter((r) => r.name.startsWith(ACT));
  const card = el(
    'article',
    { class: 'device', 'data-device': d.id, 'data-online': String(online), 'data-heard-by': d.heardBy ?? '' },
    el(
      'h2',
      {},
      el('span', { class: 'id' }, d.name ? `${d.name} (${d.id})` : d.id),
      el('span', { class: 'badge' }, d.revoked ? 'revoked' : online ? 'online' : 'offline'),
    ),
    el(
      'p',
      { class: 'meta' },
      [d.model, d.site].filter(Boolean).join(' · ') || 'no model',
      ' · last frame ',
      el('span', { class: 'last-frame' }, d.lastFrame ? ago(d.lastFrame.rxTime) : 'never'),
      d.heardBy ? ' · heard by ' : '',
      d.heardBy ? el('span', { class: 'heard-by' }, d.heardBy) : null,
      d.enrolledHere === false ? ' (enrolled by a sibling)' : '',
      extras.length ? ` · ${extras.join(' · ')}` : '',
    ),
    actuators.length
      ? el(
          'ul',
          { class: 'actuators' },
          ...actuators.map((r) =>
            el(
              'li',
              { 'data-actuator': r.name.slice(ACT.length) },
              el('span', { class: 'name' }, r.name.slice(ACT.length)),
              el('span', { class: 'value' }, fmt(r.value, r.unit)),
            ),
          ),
        )
      : null,
    renderSettings(d),
    el(
      'ul',
      { class: 'readings' },
      ...d.readings
        .filter(
          (r) =>
            !r.name.startsWith(ACT) &&
            !r.name.startsWith(SET) &&
            !/^(bat|batt|battery|vbat|rssi|signal|snr|lqi)$/i.test(r.name),
        )
        .map((r) =>
          el(
            'li',
            { 'data-reading': r.name },
            el('span', { class: 'name' }, r.name),
            el('span', { class: 'value' }, fmt(r.value, r.unit)),
            sparkline(r.history),
          ),
        ),
    ),
    el(
      'p',
      { class: rej.total ? 'rejections' : 'rejections none' },
      rej.total
        ? `${rej.total} rejected: ${reasons}${rej.last ? ` — last: ${rej.last.reason} (${rej.last.detail})` : ''}`
        : 'no rejected frames',
    ),
  );
  return card;
}

function renderAll() {
  const list = [...devices.values()].sort((a, b) => a.id.localeCompare(b.id));
  $('devices').replaceChildren(...list.map(renderDevice));
  const online = list.filter(isOnline).length;
  $('summary').dataset.online = String(online);
  $('summary').textContent = `${online} of ${list.length} devices online`;
  const last = Math.min(page.offset + PAGE, page.total);
  $('page-info').textContent =
    page.total === 0 ? 'no devices match' : `${page.offset + 1}–${last} of ${page.total} devices`;
  $('page-prev').disabled = page.offset === 0;
  $('page-next').disabled = last >= page.total;
}

function renderCard(id) {
  const d = devices.get(id);
  const old = document.querySelector(`[data-device="${CSS.escape(id)}"]`);
  if (d && old) old.replaceWith(renderDevice(d));
  else renderAll();
}

function onFrame(f) {
  const d = devices.get(f.device);
  if (!d) return;
  d.online = true;
  d.lastSeen = f.rxTime;
  d.lastFrame = { rx: f.rx, rxTime: f.rxTime, heardBy: f.heardBy, transport: f.transport, boot: f.boot, seq: f.seq };
  d.heardBy = f.heardBy;
  for (const rec of f.records) {
    const name = rec.name.startsWith(`${f.device}:`)
      ? rec.name.slice(f.device.length + 1)
      : rec.name.slice(rec.name.lastIndexOf(':') + 1);
    let r = d.readings.find((x) => x.name === name);
    if (!r) d.readings.push((r = { name, value: null, unit: rec.unit ?? null, history: [] }));
    r.value = rec.value;
    r.at = f.rxTime;
    const n = typeof rec.value === 'boolean' ? Number(rec.value) : rec.value;
    if (typeof n === 'number' && Number.isFinite(n)) {
      r.history.push(n);
      if (r.history.length > HISTORY) r.history.shift();
    }
  }
  renderCard(f.device);
}

function onRejected(e) {
  const d = devices.get(e.device);
  if (!d) return refreshDevices();
  d.rejections.total++;
  d.rejections.byReason[e.reason] = (d.rejections.byReason[e.reason] ?? 0) + 1;
  d.rejections.last = { reason: e.reason, detail: e.detail, at: Date.parse(e.at), transport: e.transport };
  renderCard(e.device);
}

function onStatus(s) {
  $('gateway-id').textContent = s.gateway;
  const rejected = Object.values(s.ingest.rejected).reduce((a, b) => a + b, 0);
  $('feed-state').textContent =
    `live · ${s.framesStored} frames stored · ${rejected} rejected · ${s.ingest.duplicates} duplicates`;
  if (s.storage) renderStorage(s.storage);
}

const mb = (b) => `${(b / 1e6).toFixed(1)} MB`;
const days = (d) => (d >= 1 ? `${d.toFixed(1)} days` : `${(d * 24).toFixed(1)} hours`);

/** The storage budget (log.maxBytes): used of budget, how long it holds at the current rate, and any warning. */
function renderStorage(st) {
  const p = $('storage');
  const parts = [
    st.maxBytes > 0
      ? `storage ${mb(st.usedBytes)} of ${mb(st.maxBytes)} budget`
      : `storage ${mb(st.usedBytes)}, no budget`,
  ];
  if (st.budgetDays !== null) parts.push(`the budget holds ${days(st.budgetDays)} at the current rate`);
  if (st.historyDays !== null) parts.push(`${days(st.historyDays)} of history held`);
  if (st.state === 'blocked') parts.push(`over budget, not pruning (${st.blockedBy})`);
  if (st.warning) parts.push(`warning: ${st.warning}`);
  p.textContent = parts.join(' · ');
  p.className = st.warning ? 'error' : 'muted';
}

/** Reloads the device list in the background; a failure shows on the page instead of vanishing. */
function refreshDevices() {
  loadDevices().catch((err) => {
    $('feed-state').textContent = `devices could not be reloaded: ${err.message}`;
  });
}

async function api(path) {
  const res = await fetch(path, { headers: { authorization: `Bearer ${token}` } });
  if (res.status === 401) {
    askToken('The token was refused.');
    throw new Error('unauthorized');
  }
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return res.json();
}

async function loadDevices() {
  const q = new URLSearchParams({ offset: String(page.offset), limit: String(PAGE) });
  if (page.q) q.set('q', page.q);
  if (page.heardBy) q.set('heardBy', page.heardBy);
  const body = await api(`/api/devices?${q}`);
  // The filters shrank the list below this page: go back to its last page.
  if (body.devices.length === 0 && body.total > 0 && page.offset > 0) {
    page.offset = Math.floor((body.total - 1) / PAGE) * PAGE;
    return loadDevices();
  }
  page.total = body.total;
  onlineTimeoutMs = body.onlineTimeoutSeconds * 1000;
  devices.clear();
  for (const d of body.devices) devices.set(d.id, d);
  renderAll();
  $('unknown').hidden = body.unknown.length === 0;
  $('unknown-list').replaceChildren(
    ...body.unknown.map((u) =>
      el('li', {}, `${u.id}: ${u.rejections.total} rejected (${Object.keys(u.rejections.byReason).join(', ')})`),
    ),
  );
}

function actionText(a) {
  if (a.kind === 'command') return `${a.command.device} ${a.command.actuator} → ${fmt(a.command.value)}`;
  if (a.kind === 'publish') return `publish ${a.topic}`;
  if (a.kind === 'settings') return `settings ${a.device} ${a.values.map(([k, v]) => `${k}=${fmt(v)}`).join(' ')}`;
  return `alert: ${a.message}`;
}

/** The latest decisions with their reasons and outcomes (from the log's audit), newest first. */
async function loadDecisions() {
  const { decisions } = await api('/api/decisions?limit=12');
  $('decisions').hidden = decisions.length === 0;
  $('decision-list').replaceChildren(
    ...decisions.map((d) =>
      el(
        'li',
        { 'data-rule': d.rule, 'data-outcome': d.outcome?.state ?? 'pending' },
        el('span', { class: 'when' }, new Date(d.at).toLocaleTimeString()),
        ' ',
        el('span', { class: 'rule' }, d.rule),
        ' ',
        el('span', { class: 'action' }, actionText(d.action)),
        ' ',
        el('span', { class: 'outcome' }, d.outcome?.state ?? (d.command ? 'in flight' : '')),
        el('div', { class: 'reason' }, d.reason),
      ),
    ),
  );
}

/** The siblings panel, and the gateways of the site in the heard-by filter. */
async function loadSiblings() {
  const body = await api('/api/siblings');
  renderSite($, body);
  const select = $('filter-heard-by');
  const ids = [body.gateway, ...body.siblings.map((s) => s.id)];
  const have = [...select.options].slice(1).map((o) => o.value);
  if (have.join('\n') !== ids.join('\n'))
    select.replaceChildren(
      select.options[0],
      ...ids.map((id) => el('option', { value: id }, id === body.gateway ? `${id} (this gateway)` : id)),
    );
  select.value = page.heardBy;
}

function refreshSiblings() {
  loadSiblings().catch((err) => {
    $('feed-state').textContent = `siblings could not be loaded: ${err.message}`;
  });
}

function refreshFirmware() {
  api('/api/firmware')
    .then((body) => renderFirmware($, body))
    .catch((err) => {
      $('feed-state').textContent = `firmware could not be loaded: ${err.message}`;
    });
}

async function followFeed() {
  feedAbort?.abort();
  const ctl = (feedAbort = new AbortController());
  while (!ctl.signal.aborted) {
    try {
      const status = await readFeed(
        token,
        (event, data) =>
          event === 'frame'
            ? onFrame(data)
            : event === 'rejected'
              ? onRejected(data)
              : event === 'status'
                ? onStatus(data)
                : null,
        ctl.signal,
      );
      if (status === 401) return askToken('The token was refused.');
    } catch {
      if (ctl.signal.aborted) return;
    }
    $('feed-state').textContent = 'feed lost; reconnecting…';
    await new Promise((r) => setTimeout(r, 2000));
  }
}

function askToken(message = '') {
  feedAbort?.abort();
  $('token-form').hidden = false;
  $('token-error').textContent = message;
}

async function run() {
  if (!token) return askToken();
  $('token-form').hidden = true;
  try {
    await loadDevices();
  } catch (err) {
    // A refused token already shows the token form; anything else shows in the feed state.
    $('feed-state').textContent = `devices could not be loaded: ${err.message}`;
    return;
  }
  // followFeed never rejects: it catches each read and retries until aborted.
  void followFeed();
  refreshDecisions();
  refreshSiblings();
  refreshFirmware();
}

function refreshDecisions() {
  loadDecisions().catch((err) => {
    $('feed-state').textContent = `decisions could not be loaded: ${err.message}`;
  });
}

$('token-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  token = $('token').value.trim();
  localStorage.setItem(TOKEN_KEY, token);
  void run();
});
let typing;
$('filter-q').addEventListener('input', () => {
  clearTimeout(typing);
  typing = setTimeout(() => {
    page.q = $('filter-q').value.trim();
    page.offset = 0;
    refreshDevices();
  }, 250);
});
$('filter-heard-by').addEventListener('change', () => {
  page.heardBy = $('filter-heard-by').value;
  page.offset = 0;
  refreshDevices();
});
$('device-filter').addEventListener('submit', (ev) => ev.preventDefault());
$('page-prev').addEventListener('click', () => {
  page.offset = Math.max(0, page.offset - PAGE);
  refreshDevices();
});
$('page-next').addEventListener('click', () => {
  if (page.offset + PAGE < page.total) page.offset += PAGE;
  refreshDevices();
});
$('forget').addEventListener('click', () => {
  localStorage.removeItem(TOKEN_KEY);
  token = '';
  askToken();
});
// Online state also changes when nothing arrives: re-check every second, reload devices every 5 s.
setInterval(() => {
  if (!token || devices.size === 0) return;
  for (const d of devices.values()) {
    const card = document.querySelector(`[data-device="${CSS.escape(d.id)}"]`);
    if (card && card.dataset.online !== String(isOnline(d))) renderCard(d.id);
    card?.querySelector('.last-frame')?.replaceChildren(d.lastFrame ? ago(d.lastFrame.rxTime) : 'never');
  }
  const online = [...devices.values()].filter(isOnline).length;
  $('summary').textContent = `${online} of ${devices.size} devices online`;
}, 1000);
setInterval(() => {
  if (!token || $('token-form').hidden === false) return;
  refreshDevices();
  refreshSiblings();
  refreshFirmware();
}, 5000);
setInterval(() => {
  if (token && devices.size > 0) refreshDecisions();
}, 2000);
// run never rejects: it catches the device load (the token form or the feed state says what failed).
void run();
