/**
 * The site view over two real gateway processes syncing over loopback TCP, each enrolling its
 * own devices: GET /api/siblings on each shows the other connected and 0 blocks behind once
 * they converge, and not connected (with its last exchange time) after the other stops;
 * GET /api/devices on each lists both gateways' devices with the gateway that heard each, and
 * its pages are disjoint and cover them all; `gateway status` prints the sibling and the last
 * audit; the dashboard (Debian's chromium, headless) shows a sibling's device with the gateway
 * that heard it, pages, filters by it, and shows the siblings panel; a frozen sibling (SIGSTOP)
 * is counted behind, then caught up. One setup for every assertion.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDevice } from '../helpers/devices.js';
import {
  gatewayCli,
  type GatewayProcess,
  publishFrames,
  type SiblingConfig,
  startGatewayProcess,
  stopGatewayProcess,
  writeSiblingConfigs,
} from '../helpers/process.js';
import { needs, onPath } from '../helpers/system-tools.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? onPath('chromium') ?? '/usr/bin/chromium';
const PER_GATEWAY = 4;
const artifacts = new URL('../../test-artifacts/', import.meta.url).pathname;

interface Sibling {
  id: string;
  connected: boolean;
  transport: string | null;
  lastExchangeAt: string | null;
  lastError: string | null;
  behind: { blocks: number; seconds: number } | null;
  refusals: Record<string, number>;
}
interface Device {
  id: string;
  enrolledHere: boolean;
  heardBy: string | null;
  lastFrame: { heardBy: string; boot: number; seq: number } | null;
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}${last ? ` (${String(last)})` : ''}`);
}

describe('the site view over two syncing gateway processes', () => {
  const devices = [0, 1].map((g) => [...Array(PER_GATEWAY).keys()].map((i) => testDevice(`site${g}-${i}`)));
  let configs: SiblingConfig[] = [];
  const gws: GatewayProcess[] = [];

  const get = async (g: number, path: string): Promise<{ status: number; body: Record<string, unknown> }> => {
    const api = configs[g]!.api!;
    const r = await fetch(`http://127.0.0.1:${api.port}${path}`, {
      headers: { authorization: `Bearer ${api.token}` },
    });
    return { status: r.status, body: (await r.json()) as Record<string, unknown> };
  };
  const siblings = async (g: number): Promise<Sibling[]> => (await get(g, '/api/siblings')).body.siblings as Sibling[];
  const deviceList = async (g: number, query = ''): Promise<{ total: number; devices: Device[] }> =>
    (await get(g, `/api/devices${query}`)).body as unknown as { total: number; devices: Device[] };

  beforeAll(async () => {
    configs = await writeSiblingConfigs(devices.flat(), 2, { devicesOf: (i) => devices[i]!, api: true });
    gws.push(...(await Promise.all(configs.map((c) => startGatewayProcess(c.file)))));
    // Each gateway hears its own devices only.
    await Promise.all(
      [0, 1].flatMap((g) => devices[g]!.map((d) => publishFrames(gws[g]!.port, d, 1, [0, 1, 2, 3, 4]))),
    );
    // Each lists all the site's devices, each with the gateway that heard it.
    for (const g of [0, 1])
      await until(`gw-${g} to list the site`, async () => {
        const l = await deviceList(g);
        return l.total === 2 * PER_GATEWAY && l.devices.every((d) => d.heardBy !== null) ? l : undefined;
      });
  }, 120_000);
  afterAll(async () => {
    for (const g of gws) if (g.child.exitCode === null) g.child.kill('SIGKILL');
    for (const c of configs) c.cleanup();
  });

  it('[siblings] each shows the other connected over TCP, 0 blocks behind once converged, nothing refused', async () => {
    for (const [g, other] of [
      [0, 'gw-1'],
      [1, 'gw-0'],
    ] as const) {
      const s = await until(`gw-${g} to see ${other} caught up`, async () => {
        const [p] = await siblings(g);
        return p?.connected && p.behind?.blocks === 0 ? p : undefined;
      });
      expect(s).toMatchObject({ id: other, transport: 'tcp+noise', lastError: null, refusals: {} });
      expect(s.behind).toEqual({ blocks: 0, seconds: 0 });
      expect(Date.now() - Date.parse(s.lastExchangeAt!)).toBeLessThan(30_000);
    }
    const body = (await get(0, '/api/siblings')).body;
    expect(body).toMatchObject({ gateway: 'gw-0', sync: true, ownForks: [] });
  }, 120_000);

  it('[devices] each lists both fleets with the gateway that heard each; pages are disjoint and cover them all; filters', async () => {
    for (const g of [0, 1]) {
      const { devices: all } = await deviceList(g, '?limit=1000');
      for (const [h, fleet] of devices.entries())
        for (const d of fleet)
          expect(all.find((x) => x.id === d.id)).toMatchObject({ heardBy: `gw-${h}`, enrolledHere: h === g });
      // Pages of 3: disjoint, in id order, together every device once.
      const pages: string[][] = [];
      for (let offset = 0; offset < all.length; offset += 3) {
        const p = await deviceList(g, `?limit=3&offset=${offset}`);
        expect(p.total).toBe(2 * PER_GATEWAY);
        pages.push(p.devices.map((d) => d.id));
      }
      expect(pages.map((p) => p.length)).toEqual([3, 3, 2]);
      expect(pages.flat()).toEqual(all.map((d) => d.id));
      expect(new Set(pages.flat()).size).toBe(2 * PER_GATEWAY);
      expect((await deviceList(g, '?offset=8')).devices).toEqual([]);
      // Filters: heard by the sibling, an id substring, both.
      const other = `gw-${1 - g}`;
      const heard = await deviceList(g, `?heardBy=${other}`);
      expect(heard.devices.map((d) => d.id)).toEqual(devices[1 - g]!.map((d) => d.id));
      expect((await deviceList(g, '?q=SITE1-')).devices.map((d) => d.id)).toEqual(devices[1]!.map((d) => d.id));
      expect((await deviceList(g, `?q=-2&heardBy=${other}`)).total).toBe(1);
    }
    // A sibling's device by id; bad paging and filters are refused with the reason.
    expect((await get(0, '/api/devices/site1-0')).body).toMatchObject({ id: 'site1-0', heardBy: 'gw-1' });
    const refused: [string, string][] = [
      ['?limit=0', 'limit'],
      ['?offset=-1', 'offset'],
      ['?heardBy=gw-9', 'heardBy'],
      [`?q=${'x'.repeat(65)}`, 'q'],
    ];
    for (const [q, word] of refused)
      expect((await get(0, `/api/devices${q}`)).body).toMatchObject({
        error: { code: 'bad-query', message: expect.stringContaining(word) },
      });
  }, 120_000);

  it('[status] gateway status prints the sibling connected with its lag, and the last audit', async () => {
    const audit = await gatewayCli(['audit', 'verify', '--config', configs[0]!.file]);
    expect(audit.stdout).toContain('ok: no faults');
    expect((await get(0, '/api/siblings')).body.audit).toMatchObject({ ok: true, faults: 0 });
    const text = (await gatewayCli(['status', '--config', configs[0]!.file])).stdout;
    expect(text).toContain('gateway gw-0 (running)');
    expect(text).toMatch(/^ {2}gw-1 .*\) {2}connected \(tcp\+noise\), last exchange \S+, lag 0 blocks, 0 s/m);
    expect(text).toMatch(/^audit: clean at /m);
    expect(text).toMatch(/^ {2}site1-0 \(sibling\) .* heard by gw-1$/m);
    const json = JSON.parse((await gatewayCli(['status', '--json', '--config', configs[0]!.file])).stdout) as {
      siblings: { id: string; connected: boolean; behind: unknown }[];
      audit: { ok: boolean };
    };
    expect(json.siblings).toEqual([
      expect.objectContaining({ id: 'gw-1', connected: true, behind: { blocks: 0, seconds: 0 } }),
    ]);
    expect(json.audit.ok).toBe(true);
  }, 120_000);

  it('[dashboard] shows a sibling device with the gateway that heard it, filters by it, and the siblings panel', {
    ...needs('chromium'),
    timeout: 120_000,
  }, async () => {
    const profile = mkdtempSync(join(tmpdir(), 'outpost-chromium-'));
    let browser: BrowserContext | undefined;
    try {
      browser = await chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM,
        headless: true,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
      });
      const page = browser.pages()[0] ?? (await browser.newPage());
      await page.goto(`http://127.0.0.1:${configs[0]!.api!.port}/`);
      await page.fill('#token', configs[0]!.api!.token);
      await page.click('#token-form button[type=submit]');
      const sibling = page.locator('[data-device="site1-0"][data-heard-by="gw-1"]');
      await sibling.waitFor({ timeout: 10_000 });
      expect(await sibling.locator('.heard-by').textContent()).toBe('gw-1');
      expect(await page.locator('[data-device]').count()).toBe(2 * PER_GATEWAY);
      await page.locator('#page-info', { hasText: `1–${2 * PER_GATEWAY} of ${2 * PER_GATEWAY} devices` }).waitFor();
      const panel = page.locator('[data-sibling="gw-1"][data-connected="true"]');
      await panel.waitFor({ timeout: 10_000 });
      expect(await panel.textContent()).toContain('connected · tcp+noise');
      mkdirSync(artifacts, { recursive: true });
      await page.screenshot({ path: join(artifacts, 'dashboard-site.png'), fullPage: true });
      // Pages of 3 (?pageSize=3): the second page holds the 4th to 6th device by id.
      await page.goto(`http://127.0.0.1:${configs[0]!.api!.port}/?pageSize=3`);
      await page.locator('#page-info', { hasText: `1–3 of ${2 * PER_GATEWAY} devices` }).waitFor();
      await page.click('#page-next');
      await page.locator('#page-info', { hasText: `4–6 of ${2 * PER_GATEWAY} devices` }).waitFor();
      expect(
        await page.locator('[data-device]').evaluateAll((els) => els.map((e) => e.getAttribute('data-device'))),
      ).toEqual(['site0-3', 'site1-0', 'site1-1']);
      // Only the devices gw-1 heard: the first page of them.
      await page.selectOption('#filter-heard-by', 'gw-1');
      await page.locator('#page-info', { hasText: `1–3 of ${PER_GATEWAY} devices` }).waitFor();
      expect(
        await page.locator('[data-device]').evaluateAll((els) => els.map((e) => e.getAttribute('data-device'))),
      ).toEqual(devices[1]!.slice(0, 3).map((d) => d.id));
    } finally {
      await browser?.close();
      rmSync(profile, { recursive: true, force: true });
    }
  });

  it('[lag] while gw-1 is frozen (SIGSTOP), gw-0 counts it behind by the blocks it authored since, for seconds; thawed, it catches up to 0', async () => {
    gws[1]!.child.kill('SIGSTOP');
    try {
      await publishFrames(gws[0]!.port, devices[0]![0]!, 2, [0, 1, 2]);
      const lagging = await until('gw-0 to count gw-1 behind for a second', async () => {
        const [p] = await siblings(0);
        return p?.behind && p.behind.blocks > 0 && p.behind.seconds >= 1 ? p : undefined;
      });
      expect(lagging.behind!.blocks).toBeLessThanOrEqual(3); // one block per ingest batch at most
    } finally {
      gws[1]!.child.kill('SIGCONT');
    }
    await until('gw-1 to catch up', async () => {
      const [p] = await siblings(0);
      return p?.connected && p.behind?.blocks === 0 ? p : undefined;
    });
    // gw-0's exchange can end before gw-1 has verified and applied the last blocks it sent (the
    // responder's own blocks and done go first): wait for them to show on gw-1.
    const d = await until('gw-1 to show the frame gw-0 heard', async () => {
      const dev = (await get(1, '/api/devices/site0-0')).body as unknown as Device;
      return dev.lastFrame?.boot === 2 && dev.lastFrame.seq === 2 ? dev : undefined;
    });
    expect(d.lastFrame).toMatchObject({ heardBy: 'gw-0', boot: 2, seq: 2 });
  }, 120_000);

  it('[stopped] after gw-1 stops, gw-0 shows it not connected, with its last exchange time and the error', async () => {
    const before = (await siblings(0))[0]!.lastExchangeAt!;
    expect(await stopGatewayProcess(gws[1]!)).toBe(0);
    const s = await until('gw-0 to see gw-1 gone', async () => {
      const [p] = await siblings(0);
      return p && !p.connected ? p : undefined;
    });
    expect(Date.parse(s.lastExchangeAt!)).toBeGreaterThanOrEqual(Date.parse(before));
    expect(s.lastError).not.toBeNull(); // ECONNREFUSED, or the link cut by the stop
    const text = (await gatewayCli(['status', '--config', configs[0]!.file])).stdout;
    expect(text).toMatch(/^ {2}gw-1 .* not connected \(tcp\+noise\), last exchange \S+Z/m);
    expect(await stopGatewayProcess(gws[0]!)).toBe(0);
  }, 120_000);
});
