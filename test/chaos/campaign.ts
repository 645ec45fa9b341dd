/**
 * One bounded fault campaign: build the site, run the devices, inject faults
 * chosen by a seeded PRNG for `durationMs`, heal everything, let the devices drain and the
 * gateways converge, stop them cleanly and hold them to the verdict (check.ts). The seed
 * replays the same choices (timing on a loaded machine still varies).
 */
import { Prng } from '../../firmware-sim/sensors.js';
import { tempDir } from '../helpers/env.js';
import { type Verdict, verdict, waitConverged } from './check.js';
import { type DevicePlan, Devices } from './devices.js';
import { chooseFault, type Injected } from './faults.js';
import { buildSite, GATEWAYS } from './topology.js';

export interface CampaignOptions {
  readonly seed: number;
  readonly durationMs: number;
  /** Pause between faults, ms (uniform in the range). */
  readonly gapMs?: readonly [number, number];
  /** How long a fault lasts before its repair, ms. */
  readonly faultMs?: readonly [number, number];
  readonly plan?: DevicePlan;
  /** Fail setup instead of skipping disk-full when no tmpfs can be mounted. */
  readonly requireDisk?: boolean;
  readonly settleMs?: number;
  readonly print?: (line: string) => void;
}

export interface CampaignReport {
  readonly seed: number;
  readonly timeline: string[];
  readonly faults: number;
  readonly generated: number;
  readonly acked: number;
  readonly refused: number;
  readonly droppedOnDevices: number;
  readonly settled: boolean;
  readonly converged: boolean;
  readonly crashes: string[];
  readonly alarms: string[];
  readonly uncleanStops: string[];
  readonly aborted?: string;
  readonly verdict?: Verdict;
  readonly errors: Record<string, Record<string, number>>;
  readonly ok: boolean;
}

const DEFAULT_PLAN: DevicePlan = { mqttPerGateway: 3, mqttRateHz: 5, serialGateways: [0, 2], serialRateHz: 8 };

export async function runCampaign(opts: CampaignOptions): Promise<CampaignReport> {
  const print = opts.print ?? (() => {});
  const rng = new Prng(opts.seed);
  const [gapLo, gapHi] = opts.gapMs ?? [800, 3000];
  const [durLo, durHi] = opts.faultMs ?? [500, 4000];
  const range = (lo: number, hi: number): number => Math.round(lo + rng.next() * (hi - lo));
  const t0 = Date.now();
  const timeline: string[] = [];
  const note = (what: string): void => {
    const line = `${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s  ${what}`;
    timeline.push(line);
    print(line);
  };

  const tmp = tempDir('outpost-chaos-');
  const devices = new Devices(opts.plan ?? DEFAULT_PLAN, GATEWAYS);
  // gw-2's tmpfs holds the whole run's data above the free-space floor (64 MiB): the site
  // writes about 6.5 MB a minute (a 30-minute run filled 193 MB), so a fixed 256 MiB left a
  // long run's gw-2 refusing every write as disk-low at the end, with nothing to disk-fill.
  const minutes = Math.ceil(opts.durationMs / 60_000);
  const site = await buildSite(tmp.dir, devices, {
    syncIntervalSeconds: 0.5,
    requireDisk: opts.requireDisk ?? false,
    diskMiB: Math.max(256, 128 + 10 * minutes),
  });
  const active = new Map<string, { healAt: number; heal: () => Promise<string> }>();
  const healing = new Map<string, Promise<void>>();
  let faults = 0;
  let settled = false;
  let converged = false;
  let result: Verdict | undefined;
  const uncleanStops: string[] = [];
  let aborted: string | undefined;
  try {
    note(
      `seed ${opts.seed}: 3 gateways, ${devices.enrolments().length} devices (${site.disk ? 'disk-full on' : 'no tmpfs: disk-full off for'} gw-2)`,
    );
    await site.mosquitto.start();
    await Promise.all(site.nodes.map((n) => n.start()));
    devices.start(
      site.nodes.map((n) => `mqtt://127.0.0.1:${n.mqttPort}`),
      site.ptys,
      site.keys,
      site.nodes.map((n) => n.id),
    );
    note('all up; faults begin');

    // A heal runs alongside the next faults (a gateway's restart takes 20 s on a loaded box, and
    // waiting for it would starve the campaign of faults); its target stays out of the draw
    // until it is done.
    let healError: Error | undefined;
    const healDue = async (all = false): Promise<void> => {
      for (const [target, a] of [...active.entries()].sort((x, y) => x[1].healAt - y[1].healAt)) {
        if (healing.has(target) || (!all && a.healAt > Date.now())) continue;
        const done = a.heal().then(
          (what) => note(`  heal: ${what}`),
          (err: unknown) => {
            healError ??= new Error(`heal of ${target} failed: ${(err as Error).message}`);
          },
        );
        healing.set(
          target,
          done.finally(() => {
            active.delete(target);
            healing.delete(target);
          }),
        );
      }
      if (all) await Promise.all(healing.values());
      if (healError) throw healError;
    };
    while (Date.now() - t0 < opts.durationMs) {
      await new Promise((r) => setTimeout(r, range(gapLo, gapHi)));
      await healDue();
      const choice = chooseFault(rng, site, devices, new Set(active.keys()));
      if (!choice) continue;
      const inj: Injected = await choice.fault.inject(choice.target, site, devices, rng);
      faults++;
      note(`fault: ${inj.what}`);
      if (inj.heal) active.set(inj.target, { healAt: Date.now() + range(durLo, durHi), heal: inj.heal });
    }

    note('final heal: every link up, every process running');
    await healDue(true);
    devices.clockOffsetMs = 0;
    await site.mosquitto.start();
    for (const ps of site.links.values()) for (const p of ps) p.restore();
    for (const p of site.ptys) if (!p.running) await p.plug();
    site.disk?.free();
    for (const n of site.nodes) {
      if (n.running) continue;
      await n.start();
      note(`  heal: started ${n.id} (it was down)`);
    }

    devices.stopGenerating();
    settled = await devices.settle(opts.settleMs ?? 60_000);
    note(
      settled
        ? 'every device has had all its frames acked'
        : `devices still hold ${devices.pending()} unacked frames: ${devices.pendingReport()}`,
    );
    converged = await waitConverged(site.nodes, opts.settleMs ?? 60_000);
    note(converged ? 'heads digests equal on all gateways' : 'gateways did not converge');
    await devices.stop();
    for (const n of site.nodes) {
      const code = await n.stop();
      if (code === 'hung') uncleanStops.push(`${n.id} did not stop within 30 s of SIGTERM`);
      else if (code !== 0) uncleanStops.push(`${n.id} exited ${code} on SIGTERM`);
    }
    result = await verdict(site.nodes, site.keys, devices.acked);
  } catch (e) {
    // A step that cannot go on (say a gateway that will not start again) ends the run with a report, not a stack trace.
    aborted = e instanceof Error ? e.message : String(e);
    note(`campaign aborted: ${aborted}`);
  } finally {
    await Promise.allSettled(healing.values());
    await devices.stop().catch(() => undefined);
    await site.close();
  }

  const crashes = site.nodes.flatMap((n) => n.crashes);
  const alarms = site.nodes.flatMap((n) => n.alarms);
  const ok =
    aborted === undefined &&
    settled &&
    converged &&
    crashes.length === 0 &&
    alarms.length === 0 &&
    uncleanStops.length === 0 &&
    result !== undefined &&
    result.lost.length === 0 &&
    result.duplicates.length === 0 &&
    result.digestsEqual &&
    result.gateways.every((g) => g.auditOk);
  // A failed run keeps its configs and the gateways' logs (<dir>/gw-N.log) for a post-mortem.
  if (ok) tmp.cleanup();
  else note(`kept the gateways' configs and logs in ${tmp.dir}`);
  return {
    seed: opts.seed,
    timeline,
    faults,
    generated: devices.generated(),
    acked: devices.acked.size,
    refused: devices.refused.size,
    droppedOnDevices: devices.dropped(),
    settled,
    converged,
    crashes,
    alarms,
    uncleanStops,
    aborted,
    verdict: result,
    errors: Object.fromEntries(site.nodes.map((n) => [n.id, Object.fromEntries(n.errors)])),
    ok,
  };
}

/** The report as text: what was injected, what each gateway holds, what was lost. */
export function formatReport(r: CampaignReport): string {
  const v = r.verdict;
  const lines = [
    `chaos seed ${r.seed} (replay: CHAOS_SEED=${r.seed} npm run chaos): ${r.faults} faults injected`,
    `frames: ${r.generated} generated, ${r.acked} acked to devices, ${r.refused} refused as final (replayed/rejected), ${r.droppedOnDevices} dropped by full device buffers`,
    `settled: ${r.settled}, converged: ${r.converged}`,
  ];
  for (const g of v?.gateways ?? []) {
    lines.push(
      `${g.id}: ${g.viewFrames} frames in view, ${g.localFrames} ingested locally, digest ${g.digest.slice(0, 16)}…, audit ${g.auditOk ? 'ok' : 'FAILED'} (${g.auditSummary})`,
    );
  }
  for (const [id, errs] of Object.entries(r.errors))
    if (Object.keys(errs).length) lines.push(`${id} error logs: ${JSON.stringify(errs)}`);
  const lost = v?.lost ?? [];
  lines.push(
    `lost: ${lost.length === 0 ? 'nothing' : `${lost.length} (${lost.slice(0, 10).join('; ')}${lost.length > 10 ? '; …' : ''})`}`,
  );
  lines.push(`duplicates: ${v?.duplicates.length ? v.duplicates.slice(0, 10).join('; ') : 'none'}`);
  lines.push(`crashes: ${r.crashes.length ? r.crashes.join('; ') : 'none'}`);
  if (r.alarms.length) lines.push(`alarms: ${r.alarms.join('\n  ')}`);
  if (r.aborted) lines.push(`aborted: ${r.aborted}`);
  if (r.uncleanStops.length) lines.push(`unclean stops: ${r.uncleanStops.join('; ')}`);
  lines.push(r.ok ? 'PASS' : 'FAIL');
  return lines.join('\n');
}
