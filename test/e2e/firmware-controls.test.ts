/**
 * An operator's controls of a rollout, real processes (test/helpers/firmware.ts): pause holds
 * a rollout at its stage while the device that took the offer finishes (even across its power
 * loss), resume carries it to the end; abort stops a download and nothing is offered again,
 * and the devices it left mid-download take a later release's rollout; an
 * offer window outside the gateway's local time offers nothing. /api/firmware answers what
 * `firmware status --json` says, in the shape openapi.json documents.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { waitFor } from '../helpers/env.js';
import {
  addRelease,
  type FirmwareSite,
  finalOf,
  firmwareCli,
  rolloutStatus,
  startFirmwareSite,
  startRollout,
  startUpdateSim,
  type UpdateSim,
} from '../helpers/firmware.js';
import { gatewayCli } from '../helpers/process.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** A slow download (one 1 KiB chunk per request), so a control lands while it runs. */
const SLOW = ['--chunk', '1024', '--window', '2'];

/** The offset the device's flash holds of its download; -1 before it has one (or before its process wrote its state). */
const offset = (site: FirmwareSite, device: string): number => {
  const file = join(site.dir, 'flash', device, 'update.json');
  if (!existsSync(file)) return -1;
  return (JSON.parse(readFileSync(file, 'utf8')) as { pending?: { offset: number } }).pending?.offset ?? -1;
};

/** States a device reported, as a set (what it was offered shows as anything but idle). */
const statesOf = (sim: UpdateSim, device: string) =>
  new Set(sim.lines.filter((l) => l.device === device).map((l) => l.state));

async function refused(site: FirmwareSite, args: string[]): Promise<string> {
  const r = await gatewayCli(['firmware', ...args, '--config', site.cfg, '--wait', '30']);
  expect(r.code).toBe(1);
  return r.stderr;
}

describe('firmware rollout controls', () => {
  it('pause holds the rollout at its stage while the canary that took the offer finishes (through its power loss); resume carries it to the end; /api/firmware says the same as status', {
    timeout: 180_000,
  }, async () => {
    const site = await startFirmwareSite(4, { api: true });
    const image = await addRelease(site, 200_000);
    const [canary, ...rest] = site.devices as [string, ...string[]];
    let first = startUpdateSim(site, [...SLOW, '--device', canary]);
    await startRollout(site, 'r-pause', ['--canary', '1', '--steps', '100%']);
    await waitFor(() => offset(site, canary) > 0, 60_000, 'the canary downloading');
    // Power loss of the canary: it cannot finish before the pause is logged.
    first.child.kill('SIGKILL');
    await new Promise((r) => first.child.once('exit', r));
    await firmwareCli(site, ['pause', 'r-pause', '--wait', '30']);
    expect((await rolloutStatus(site, 'r-pause')).state).toBe('paused');
    expect(await refused(site, ['pause', 'r-pause'])).toMatch(/paused already/);
    const others = startUpdateSim(
      site,
      rest.flatMap((d) => ['--device', d]),
    );
    first = startUpdateSim(site, ['--device', canary]);
    await waitFor(() => finalOf(first, canary)?.state === 'confirmed', 90_000, 'the canary finishing while paused');
    expect(first.lines.find((l) => l.state === 'downloading')!.offset).toBeGreaterThan(0);
    // Several ticks after the canary ended: still paused at stage 0, nothing offered to the others.
    await sleep(3000);
    const paused = await rolloutStatus(site, 'r-pause');
    expect(paused).toMatchObject({ state: 'paused', stage: 0 });
    for (const d of rest) {
      expect(paused.devices[d]!.state).toBe('pending');
      expect(statesOf(others, d)).toEqual(new Set(['idle']));
    }
    await firmwareCli(site, ['resume', 'r-pause', '--wait', '30']);
    await waitFor(
      () => rest.every((d) => finalOf(others, d)?.state === 'confirmed'),
      120_000,
      () => JSON.stringify(others.lines.slice(-4)),
    );
    for (const d of site.devices)
      expect(readFileSync(join(site.dir, 'flash', d, 'slot0.bin')).equals(image)).toBe(true);
    await waitFor(async () => (await rolloutStatus(site, 'r-pause')).state === 'done', 30_000);
    expect(await refused(site, ['abort', 'r-pause'])).toMatch(/is done/);

    // The API: what the CLI says, in the documented shape; the admin token is needed.
    const { base, token } = site.api!;
    expect((await fetch(`${base}/api/firmware`)).status).toBe(401);
    const body = (await (
      await fetch(`${base}/api/firmware`, { headers: { authorization: `Bearer ${token}` } })
    ).json()) as { releases: unknown[]; rollouts: unknown[] };
    expect(body.rollouts).toEqual(JSON.parse(await firmwareCli(site, ['status', '--json'])));
    expect(body.releases).toEqual(JSON.parse(await firmwareCli(site, ['list', '--json'])).releases);
    const doc = JSON.parse(readFileSync(new URL('../../gateway/api/openapi.json', import.meta.url), 'utf8'));
    const schema = z.fromJSONSchema({
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      ...JSON.parse(JSON.stringify(doc.components.schemas.Firmware)),
    });
    expect(schema.safeParse(body).success).toBe(true);
    expect(schema.safeParse({ ...body, rollouts: [{ ...(body.rollouts[0] as object), state: 'late' }] }).success).toBe(
      false,
    );
  });

  it('abort stops a download and nothing is offered again, the devices left mid-download take the rollout of a later release; outside its window a rollout offers nothing', {
    timeout: 120_000,
  }, async () => {
    const site = await startFirmwareSite(2);
    await addRelease(site, 400_000);
    const [a, b] = site.devices as [string, string];
    const sim = startUpdateSim(site, SLOW);
    // A window that starts two hours from now (the gateway's local time): nothing is offered.
    const h = new Date().getHours();
    const hh = (n: number) => `${String(n % 24).padStart(2, '0')}:00`;
    await startRollout(site, 'r-window', ['--window', `${hh(h + 2)}-${hh(h + 3)}`]);
    await sleep(3000);
    const waiting = await rolloutStatus(site, 'r-window');
    expect(waiting).toMatchObject({ state: 'running', window: `${hh(h + 2)}-${hh(h + 3)}` });
    expect(Object.values(waiting.devices).map((d) => d.state)).toEqual(['pending', 'pending']);
    expect(statesOf(sim, a)).toEqual(new Set(['idle']));
    await firmwareCli(site, ['abort', 'r-window', '--wait', '30']);
    expect((await rolloutStatus(site, 'r-window')).state).toBe('aborted');
    expect(await refused(site, ['resume', 'r-window'])).toMatch(/aborted/);

    // Aborted mid-download (the devices off meanwhile, so neither can finish first): back on,
    // they ask to resume and are not served; the offsets stay short of the image.
    await startRollout(site, 'r-abort');
    await waitFor(() => offset(site, a) > 0 && offset(site, b) > 0, 60_000, 'both downloading');
    sim.child.kill('SIGKILL');
    await new Promise((r) => sim.child.once('exit', r));
    await firmwareCli(site, ['abort', 'r-abort', '--wait', '30']);
    const held = [offset(site, a), offset(site, b)];
    const again = startUpdateSim(site, SLOW);
    await waitFor(() => again.lines.filter((l) => l.reason === 'resume').length >= 4, 30_000, 'resume requests');
    await sleep(1000);
    expect([offset(site, a), offset(site, b)]).toEqual(held);
    expect(held.every((o) => o > 0 && o < 400_000)).toBe(true);
    expect(finalOf(again, a)).toBeUndefined();
    const st = await rolloutStatus(site, 'r-abort');
    expect(st.state).toBe('aborted');

    // A later release rolled out to them: the aborted downloads, served no more, give way to it.
    const later = await addRelease(site, 20_000, '1.2.0');
    await firmwareCli(site, ['rollout', '1.2.0', '--devices', 'sim-*', '--id', 'r-later', '--wait', '60']);
    await waitFor(
      () => [a, b].every((d) => finalOf(again, d)?.state === 'confirmed'),
      60_000,
      () => JSON.stringify(again.lines.slice(-4)),
    );
    for (const d of [a, b]) {
      expect(again.lines.some((l) => l.device === d && l.state === 'idle' && l.reason === 'abandoned')).toBe(true);
      expect(readFileSync(join(site.dir, 'flash', d, 'slot0.bin')).equals(later)).toBe(true);
    }
    await waitFor(async () => (await rolloutStatus(site, 'r-later')).state === 'done', 30_000);
    expect((await rolloutStatus(site, 'r-abort')).state).toBe('aborted');
  });
});
