/**
 * The out-of-the-box demo: when no device is configured, run a firmware-sim
 * fleet as a child process (a real, separate "device" side, as in the field)
 * and enrol its public keys. The gateway reads only the public half of the
 * fleet manifest; the secret keys stay with the simulator.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Logger } from './logger.js';
import type { Enrolment, Registry } from './registry.js';

// Compiled, the fleet runs compiled too (dist/firmware-sim/cli.js); from source, through its launcher.
const simBin = fileURLToPath(
  new URL(import.meta.url.endsWith('.ts') ? '../bin/firmware-sim.js' : '../firmware-sim/cli.js', import.meta.url),
);

interface ManifestDevice {
  id: string;
  publicKey: string;
  site?: string;
  model?: string;
}

/** Reads the public part of a firmware-sim fleet manifest. */
export function readManifestPublic(file: string): Enrolment[] {
  const raw = JSON.parse(readFileSync(file, 'utf8')) as { devices?: ManifestDevice[] };
  if (!Array.isArray(raw.devices)) throw new Error(`${file}: no "devices" array`);
  return raw.devices.map((d, i) => {
    if (typeof d.id !== 'string' || typeof d.publicKey !== 'string')
      throw new Error(`${file}: devices[${i}] needs "id" and "publicKey"`);
    return { id: d.id, publicKey: d.publicKey, ...(d.site && { site: d.site }), ...(d.model && { model: d.model }) };
  });
}

export interface SimulationOptions {
  readonly dataDir: string;
  readonly devices: number;
  readonly rate: number;
  readonly brokerUrl: string;
  /** The devices authenticate at CONNECT to this gateway (connect tokens). */
  readonly gatewayId: string;
}

export class Simulation {
  private constructor(
    private readonly child: ChildProcess,
    private readonly log: Logger,
  ) {}

  static manifestPath(dataDir: string): string {
    return join(dataDir, 'sim-fleet.json');
  }

  /** Creates (once) the fleet keys, enrols them, and starts the fleet. */
  static async start(opts: SimulationOptions, registry: Registry, log: Logger): Promise<Simulation> {
    const manifest = Simulation.manifestPath(opts.dataDir);
    if (!existsSync(manifest)) {
      await promisify(execFile)(process.execPath, [
        simBin,
        'keygen',
        '--devices',
        String(opts.devices),
        '--out',
        manifest,
      ]);
      log.info({ manifest, devices: opts.devices }, `created simulated fleet keys in ${manifest}`);
    }
    const devices = readManifestPublic(manifest);
    await registry.enrollAll(devices, log);
    log.info({ devices: devices.length }, `enrolled ${devices.length} simulated devices`);
    return Simulation.run(
      {
        manifest,
        brokerUrl: opts.brokerUrl,
        rate: opts.rate,
        stateDir: join(opts.dataDir, 'sim-state'),
        gatewayId: opts.gatewayId,
      },
      log,
    );
  }

  /** Runs `firmware-sim fleet` for the devices of `manifest` (keys already enrolled); `args`: more fleet flags. */
  static run(
    opts: {
      manifest: string;
      brokerUrl: string;
      rate: number;
      stateDir: string;
      /** Signs a fresh CONNECT token for this gateway on every connect (docs/security.md). */
      gatewayId?: string;
      args?: readonly string[];
    },
    log: Logger,
  ): Simulation {
    const child = spawn(
      process.execPath,
      [
        // A demo-sized fleet: half V8's default young generation, about 20 MB less resident (bench/README.md).
        '--max-semi-space-size=8',
        simBin,
        'fleet',
        '--keys',
        opts.manifest,
        '--broker',
        opts.brokerUrl,
        ...(opts.gatewayId === undefined ? [] : ['--gateway-id', opts.gatewayId]),
        '--rate',
        String(opts.rate),
        '--state',
        opts.stateDir,
        ...(opts.args ?? []),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const sim = new Simulation(child, log);
    for (const stream of [child.stdout!, child.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => log.debug({ sim: line }, 'firmware-sim'));
    }
    child.on('exit', (code, signal) => {
      if (code !== 0 && signal !== 'SIGTERM') log.warn({ code, signal }, 'simulated fleet exited');
    });
    return sim;
  }

  /** True when every enrolled device belongs to the simulated fleet (so the demo may run). */
  static onlySimulated(dataDir: string, enrolled: readonly string[]): boolean {
    if (enrolled.length === 0) return true;
    const manifest = Simulation.manifestPath(dataDir);
    if (!existsSync(manifest)) return false;
    const ids = new Set(readManifestPublic(manifest).map((d) => d.id));
    return enrolled.every((id) => ids.has(id));
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
    this.log.debug('simulated fleet stopped');
  }
}
