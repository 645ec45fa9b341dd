/**
 * The dashboard in a real browser (Debian's chromium through playwright-core,
 * headless) against an in-process gateway and a firmware-sim fleet over MQTT:
 * it lists the fleet, a reading changes live on screen, and a device taken
 * offline is shown offline within its online timeout; a firmware rollout shows its steps and
 * devices, and its pause. A screenshot is kept in test-artifacts/.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { forgedFrame } from '../../firmware-sim/faults.js';
import { Fleet } from '../../firmware-sim/fleet.js';
import { generateManifest, publicView } from '../../firmware-sim/manifest.js';
import { publicKeyFromSeed, signEd25519 } from '../../gateway/crypto/ed25519.js';
import { queueControl, queueRelease, queueRollout } from '../../gateway/firmware/inbox.js';
import type { Gateway } from '../../gateway/gateway.js';
import { firmwareBody } from '../../protocols/firmware-block.js';
import { encodeManifest } from '../../protocols/firmware-manifest.js';
import { encodeCanonical, publicKeyToDidKey } from '../../protocols/index.js';
import { running, startTestGateway, tempDir, waitFor } from '../helpers/env.js';
import { needs, onPath } from '../helpers/system-tools.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? onPath('chromium') ?? '/usr/bin/chromium';
const ONLINE_TIMEOUT_S = 2;
const artifacts = new URL('../../test-artifacts/', import.meta.url).pathname;

describe('dashboard (chromium, headless)', needs('chromium'), () => {
  const tmp = tempDir();
  const profile = mkdtempSync(join(tmpdir(), 'outpost-chromium-'));
  const manifest = generateManifest({
    devices: 4,
    prefix: 'dash',
    site: 'plant-a',
    model: ['env-1', 'press-vib-1', 'baro-1', 'door-1'],
  });
  let gw: Gateway;
  let fleet: Fleet;
  let browser: BrowserContext;
  let page: Page;
  let base: string;
  const releaseSeed = randomBytes(32);

  beforeAll(async () => {
    const policy = join(tmp.dir, 'policy.yaml');
    writeFileSync(policy, `releaseKeys:\n  release-1: "${publicKeyToDidKey(publicKeyFromSeed(releaseSeed))}"\n`);
    ({ gw } = await startTestGateway(
      tmp.dir,
      publicView(manifest).devices.map((d) => ({ id: d.id, publicKey: d.publicKey, model: d.model, site: d.site })),
      {
        api: { port: 0, token: 'dashboard-test-token-0123456789' },
        status: { intervalSeconds: 1, onlineTimeoutSeconds: ONLINE_TIMEOUT_S },
        policy: { file: policy },
      },
    ));
    base = `http://127.0.0.1:${running(gw, 'api').port}`;
    fleet = new Fleet({
      brokerUrl: `mqtt://127.0.0.1:${running(gw, 'broker').port}`,
      manifest,
      rateHz: 4,
      reconnectPeriodMs: 60_000,
    });
    fleet.start();
    // A fresh profile directory (playwright passes it as --user-data-dir); phone-sized viewport.
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
      viewport: { width: 412, height: 915 },
      deviceScaleFactor: 1,
    });
    page = browser.pages()[0] ?? (await browser.newPage());
  });
  afterAll(async () => {
    await browser?.close();
    await fleet?.stop(1000);
    await gw?.stop();
    tmp.cleanup();
    rmSync(profile, { recursive: true, force: true });
  });

  it('[token] asks for the admin token, refuses a wrong one, and lists the whole fleet with the right one', async () => {
    await page.goto(base + '/');
    await page.locator('#token-form').waitFor({ state: 'visible' });
    await page.fill('#token', 'wrong-token-wrong-token');
    await page.click('#token-form button[type=submit]');
    await page.locator('#token-error', { hasText: 'refused' }).waitFor();
    await page.fill('#token', 'dashboard-test-token-0123456789');
    await page.click('#token-form button[type=submit]');
    for (const d of manifest.devices)
      await page.locator(`[data-device="${d.id}"][data-online="true"]`).waitFor({ timeout: 10_000 });
    expect(await page.locator('[data-device]').count()).toBe(manifest.devices.length);
    // Each card shows its model's readings (env-1: temp and hum).
    const env = manifest.devices.find((d) => d.model === 'env-1')!;
    await page.locator(`[data-device="${env.id}"] [data-reading="temp"] .value`).waitFor();
    expect(await page.locator(`[data-device="${env.id}"] [data-reading="temp"] .value`).textContent()).toMatch(
      /^-?\d+(\.\d+)? °C$/,
    ); // SenML Cel shown as °C
    expect(await page.locator(`[data-device="${env.id}"] [data-reading="hum"] .value`).textContent()).toMatch(/%RH$/);
  });

  it('[live] a reading changes on screen from the feed, and its sparkline grows, without reloading', async () => {
    const press = manifest.devices.find((d) => d.model === 'baro-1')!;
    const value = page.locator(`[data-device="${press.id}"] [data-reading="press"] .value`);
    await value.waitFor();
    const first = await value.textContent();
    // The feed pushes every frame; the page is not reloaded (a marker set now would be lost).
    await page.evaluate(() => ((globalThis as { marker?: number }).marker = 1));
    await expect.poll(() => value.textContent(), { timeout: 10_000, interval: 50 }).not.toBe(first);
    expect(await page.evaluate(() => (globalThis as { marker?: number }).marker)).toBe(1);
    const points = await page
      .locator(`[data-device="${press.id}"] [data-reading="press"] polyline`)
      .getAttribute('points');
    expect(points!.split(' ').length).toBeGreaterThanOrEqual(2);
  });

  it('[rejections] a forged frame shows on its device card with the reason, live', async () => {
    const dev = fleet.devices[1]!;
    await fleet.inject(dev.id, forgedFrame(dev.id, { boot: dev.boot, seq: 90_000 }));
    const rej = page.locator(`[data-device="${dev.id}"] .rejections`);
    await page
      .locator(`[data-device="${dev.id}"] .rejections`, { hasText: '1 rejected: bad-signature' })
      .waitFor({ timeout: 5000 });
    expect(await rej.textContent()).toContain('last: bad-signature');
  });

  it('[firmware] a rollout shows its state, a progress bar per step and each device; a pause shows', async () => {
    // The fleet's devices take no offers (they are not updatable): the rollout stays running, its devices pending.
    const image = randomBytes(3000);
    const digest = new Uint8Array(createHash('sha256').update(image).digest());
    const manifestBytes = encodeManifest(
      {
        model: 'env-1',
        version: '1.1.0',
        digest,
        size: image.length,
        minVersion: '0.0.0',
        slot: 1,
        issued: Date.now(),
      },
      publicKeyFromSeed(releaseSeed),
      (m) => signEd25519(releaseSeed, m),
    );
    writeFileSync(join(tmp.dir, 'image.bin'), image);
    queueRelease(tmp.dir, manifestBytes, join(tmp.dir, 'image.bin'));
    await waitFor(() => gw.firmware.store.releases.size === 1, 10_000, 'release logged');
    const devices = manifest.devices.slice(0, 2).map((d) => d.id);
    const rollout = {
      type: 'rollout',
      id: 'r-dash',
      digest,
      devices,
      canary: 1,
      steps: [100],
      haltPercent: 50,
    } as const;
    queueRollout(tmp.dir, encodeCanonical(firmwareBody({ ...rollout, at: Date.now() })));
    const panel = page.locator('#firmware li[data-rollout="r-dash"]');
    await page.locator('#firmware li[data-rollout="r-dash"][data-state="running"]').waitFor({ timeout: 10_000 });
    expect(await panel.locator('.steps > li').count()).toBe(2); // the canary, then 100 %
    expect(await panel.locator('.steps progress').first().getAttribute('max')).toBe('1');
    expect(await panel.locator('.fw-devices > li').count()).toBe(2);
    queueControl(
      tmp.dir,
      encodeCanonical(firmwareBody({ type: 'control', rollout: 'r-dash', action: 'pause', at: 1 })),
    );
    await page.locator('#firmware li[data-rollout="r-dash"][data-state="paused"]').waitFor({ timeout: 10_000 });
  });

  it('[offline] a device taken offline turns offline within its timeout, the others stay online', async () => {
    const victim = manifest.devices[0]!;
    const card = page.locator(`[data-device="${victim.id}"]`);
    await page.locator(`[data-device="${victim.id}"][data-online="true"]`).waitFor();
    const t0 = Date.now();
    void fleet.link(victim.id)!.offlineFor(30_000);
    await page
      .locator(`[data-device="${victim.id}"][data-online="false"]`)
      .waitFor({ timeout: (ONLINE_TIMEOUT_S + 4) * 1000 });
    const tookMs = Date.now() - t0;
    expect(tookMs).toBeLessThanOrEqual((ONLINE_TIMEOUT_S + 4) * 1000);
    expect(await card.locator('.badge').textContent()).toBe('offline');
    for (const d of manifest.devices.slice(1))
      expect(await page.locator(`[data-device="${d.id}"]`).getAttribute('data-online')).toBe('true');
    mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: join(artifacts, 'dashboard.png'), fullPage: true });
    // The same page on a desktop-sized window: cards flow into columns.
    await page.setViewportSize({ width: 1280, height: 720 });
    // Live updates re-render the cards, so a box can be momentarily detached: poll until both are laid out.
    const rowOf = async (): Promise<number[] | null> => {
      const [a, b] = await Promise.all([
        page.locator('[data-device]').nth(0).boundingBox(),
        page.locator('[data-device]').nth(1).boundingBox(),
      ]);
      return a && b ? [a.y, b.y] : null;
    };
    await expect.poll(rowOf, { timeout: 5000 }).toSatisfy((r: number[] | null) => r !== null && r[0] === r[1]); // side by side, not stacked
    await page.screenshot({ path: join(artifacts, 'dashboard-desktop.png') });
  });
});
