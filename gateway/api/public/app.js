// The Outpost dashboard: devices, readings with sparklines, rejections, live from /api/feed.
import { readFeed } from './feed.js';
import { sparkline } from './sparkline.js';

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = 'outpost.token';
const HISTORY = 60;
/** id → device as /api/devices returns it, updated by the feed. */
const devices = new Map();
let onlineTimeoutMs = 30_000;
let token = localStorage.getItem(TOKEN_KEY) ?? '';
let feedAbort;

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else e.setAttribute(k, v);
  }
  e.append(...children.filter((c) => c !== null && c !== undefined));
  return e;
}

function ago(iso) {
  if (!iso) return 'never';
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return new Date(iso).toLocaleString();
}

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
  const card = el(
    'article',
    { class: 'device', 'data-device': d.id, 'data-online': String(online) },
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
      extras.length ? ` · ${extras.join(' · ')}` : '',
    ),
    el(
      'ul',
      { class: 'readings' },
      ...d.readings
        .filter((r) => !/^(bat|batt|battery|vbat|rssi|signal|snr|lqi)$/i.test(r.name))
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
  d.lastFrame = { rx: f.rx, rxTime: f.rxTime, transport: f.transport, boot: f.boot, seq: f.seq };
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
  const body = await api('/api/devices');
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
}

$('token-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  token = $('token').value.trim();
  localStorage.setItem(TOKEN_KEY, token);
  void run();
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
  if (token && devices.size > 0) refreshDevices();
}, 5000);
// run never rejects: it catches the device load (the token form or the feed state says what failed).
void run();
