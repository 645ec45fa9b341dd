/**
 * The real processes of the fault campaign: gateway processes (`gateway start`) that can be
 * SIGKILLed and restarted on the same ports and data, a Mosquitto that can be killed and
 * restarted, and a tmpfs that can be filled to make one gateway's disk full.
 */
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { appendFileSync, mkdirSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import mqtt from 'mqtt';
import { killAndWait } from '../helpers/pty.js';

const gatewayBin = new URL('../../bin/gateway.js', import.meta.url).pathname;

/** `gateway …` as a child process; resolves with its stdout (rejects on a non-zero exit). */
export async function gatewayCli(args: string[]): Promise<string> {
  return (await promisify(execFile)(process.execPath, [gatewayBin, ...args], { maxBuffer: 64 << 20 })).stdout;
}

/** Stderr or log lines that mean a defect, whatever the exit code says. */
const ALARM = /unhandled|uncaught|segmentation|abort|heap out of memory|FATAL/i;

export class GatewayNode {
  child: ChildProcess | undefined;
  /** Exits the campaign did not cause: crashes. */
  readonly crashes: string[] = [];
  /** Fatal log lines and alarming stderr lines (unhandled rejections, native faults). */
  readonly alarms: string[] = [];
  /** Error-level log messages, counted (store failures are expected under disk-full). */
  readonly errors = new Map<string, number>();
  starts = 0;
  /** Receive-clock offset for the next start (OUTPOST_CLOCK_OFFSET_MS, gateway/clock-offset.ts). */
  clockOffsetMs = 0;
  private expectExit = false;

  constructor(
    readonly id: string,
    readonly configFile: string,
    readonly dataDir: string,
    readonly mqttPort: number,
  ) {}

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Spawns `gateway start` and waits for its "ready" line. */
  async start(timeoutMs = 60_000): Promise<void> {
    if (this.running) return;
    this.expectExit = false;
    this.starts++;
    const env = { ...process.env, OUTPOST_CLOCK_OFFSET_MS: String(this.clockOffsetMs) };
    const child = spawn(process.execPath, [gatewayBin, 'start', '--config', this.configFile, '--no-simulate'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env,
    });
    this.child = child;
    const tag = `${this.id}#${this.starts}`;
    // The last lines of both streams, for the report when this process crashes.
    const tail: string[] = [];
    // Every line also goes to <config dir>/<id>.log, kept when the campaign fails.
    const logFile = join(dirname(this.configFile), `${this.id}.log`);
    const keep = (line: string): void => {
      appendFileSync(logFile, `${tag} ${line}\n`);
      tail.push(line.slice(0, 300));
      if (tail.length > 12) tail.shift();
    };
    createInterface({ input: child.stderr! }).on('line', (line) => {
      keep(`stderr: ${line}`);
      if (ALARM.test(line) && this.alarms.length < 50) this.alarms.push(`${tag} stderr: ${line}`);
    });
    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${tag} did not become ready in ${timeoutMs} ms`)), timeoutMs);
      createInterface({ input: child.stdout! }).on('line', (line) => {
        let rec: { event?: string; level?: number; msg?: string; kind?: string };
        try {
          rec = JSON.parse(line) as typeof rec;
        } catch {
          if (ALARM.test(line)) this.alarms.push(`${tag} stdout: ${line}`);
          return;
        }
        keep(`log: ${line}`);
        if (rec.event === 'ready') {
          clearTimeout(timer);
          resolve();
        }
        if ((rec.level ?? 0) >= 60 && this.alarms.length < 50) this.alarms.push(`${tag} fatal: ${line.slice(0, 500)}`);
        else if ((rec.level ?? 0) >= 50) {
          const k = rec.kind ?? rec.msg ?? '?';
          this.errors.set(k, (this.errors.get(k) ?? 0) + 1);
        }
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        if (!this.expectExit)
          this.crashes.push(
            `${tag} exited by itself (code ${code}, signal ${signal}); last output:\n    ${tail.join('\n    ')}`,
          );
        reject(new Error(`${tag} exited before ready (code ${code}, signal ${signal})`));
      });
    });
    await ready;
  }

  /** SIGKILL, as a power cut or the OOM killer would. */
  async kill(): Promise<void> {
    await this.signal('SIGKILL');
  }

  /** SIGTERM (a clean stop); resolves with the exit code, or 'hung' (then SIGKILLed) after `timeoutMs`. */
  async stop(timeoutMs = 30_000): Promise<number | null | 'hung'> {
    const child = this.child;
    if (!child || !this.running) return child?.exitCode ?? null;
    const exited = this.signal('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const r = await Promise.race([
      exited,
      new Promise<'hung'>((res) => (timer = setTimeout(() => res('hung'), timeoutMs))),
    ]);
    clearTimeout(timer);
    if (r === 'hung') {
      this.alarms.push(
        `${this.id} hung on SIGTERM; open handles: ${await openHandles(child.pid!).catch((e: Error) => `(inspector: ${e.message})`)}`,
      );
      await this.kill();
    }
    return r;
  }

  private async signal(sig: NodeJS.Signals): Promise<number | null> {
    const child = this.child;
    if (!child || !this.running) return child?.exitCode ?? null;
    this.expectExit = true;
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill(sig);
    return exited;
  }
}

/**
 * What keeps a hung process alive, for the report: SIGUSR1 opens its inspector (127.0.0.1:9229),
 * then one Runtime.evaluate lists its active handles (sockets with their ports, servers, timers).
 */
async function openHandles(pid: number): Promise<string> {
  process.kill(pid, 'SIGUSR1');
  await new Promise((r) => setTimeout(r, 500));
  const targets = (await (await fetch('http://127.0.0.1:9229/json/list')).json()) as { webSocketDebuggerUrl: string }[];
  const { WebSocket } = await import('ws');
  const ws = new WebSocket(targets[0]!.webSocketDebuggerUrl);
  await new Promise((r, j) => (ws.once('open', r), ws.once('error', j)));
  const expression = `process._getActiveHandles().map((h) => h.constructor.name + (h.remotePort ? ':' + h.remotePort : '') + (h.address && h.listening ? '@' + JSON.stringify(h.address()) : '') + (h._idleTimeout > 0 ? '(' + h._idleTimeout + 'ms)' : '')).join(', ')`;
  ws.send(JSON.stringify({ id: 1, method: 'Runtime.evaluate', params: { expression } }));
  const reply = await new Promise<string>((r) => ws.once('message', (m) => r(String(m))));
  ws.close();
  return (JSON.parse(reply) as { result?: { result?: { value?: string } } }).result?.result?.value ?? reply;
}

/** A Mosquitto on a fixed port, used by two siblings for sync. */
export class Mosquitto {
  private proc: ChildProcess | undefined;
  private readonly conf: string;

  constructor(
    dir: string,
    readonly port: number,
  ) {
    this.conf = join(dir, 'mosquitto.conf');
    writeFileSync(this.conf, `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\n`);
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }
  get running(): boolean {
    return this.proc !== undefined;
  }

  /**
   * Starts it and waits until it accepts a connection. Under a loaded box a restart can take
   * seconds, or exit at once (its port not yet free): it is spawned again until 30 s have passed,
   * and the error names what mosquitto printed.
   */
  async start(): Promise<void> {
    if (this.proc) return;
    let stderr = '';
    const spawnOnce = () => {
      const proc = spawn('mosquitto', ['-c', this.conf], { stdio: ['ignore', 'ignore', 'pipe'] });
      proc.stderr?.on('data', (d: Buffer) => {
        stderr = (stderr + d.toString()).slice(-2000);
      });
      this.proc = proc;
      proc.once('exit', () => {
        if (this.proc === proc) this.proc = undefined;
      });
    };
    spawnOnce();
    const end = Date.now() + 30_000;
    for (;;) {
      const c = await mqtt.connectAsync(this.url, { reconnectPeriod: 0, connectTimeout: 1000 }).catch(() => undefined);
      if (c) return void (await c.endAsync());
      if (Date.now() > end) throw new Error(`mosquitto did not come up within 30 s: ${stderr.trim() || 'no output'}`);
      await new Promise((r) => setTimeout(r, 200));
      if (!this.proc) spawnOnce();
    }
  }

  async kill(): Promise<void> {
    const proc = this.proc;
    if (!proc) return;
    this.proc = undefined;
    await killAndWait(proc, 'SIGKILL');
  }
}

/** A tmpfs mounted on `dir` (needs root); `fill()` takes all its free space, `free()` gives it back. */
export class SmallDisk {
  private readonly ballast: string;
  private files = 0;

  private constructor(readonly dir: string) {
    this.ballast = join(dir, 'ballast');
  }

  /** Mounts it, or returns undefined when this process may not mount (not root). */
  static mount(dir: string, size = '256m'): SmallDisk | undefined {
    mkdirSync(dir, { recursive: true });
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'ignore' });
      return new SmallDisk(dir);
    } catch {
      return undefined;
    }
  }

  /** Allocates every free block to ballast files: the next write that needs a new page fails with ENOSPC. */
  fill(): number {
    let total = 0;
    // The gateway writes meanwhile, so free space can shrink between statfs and fallocate: retry smaller.
    for (let i = 0; i < 12; i++) {
      const st = statfsSync(this.dir);
      const free = Number(st.bavail) * Number(st.bsize);
      if (free < 4096) break;
      const size = Math.max(4096, free - i * 65536);
      try {
        execFileSync('fallocate', ['-l', String(size), `${this.ballast}-${this.files}`], { stdio: 'ignore' });
        this.files++;
        total += size;
      } catch {
        // lost the race for the last pages: next round asks for less
      }
    }
    return total;
  }

  free(): void {
    for (let i = 0; i < this.files; i++) rmSync(`${this.ballast}-${i}`, { force: true });
    this.files = 0;
  }

  unmount(): void {
    try {
      execFileSync('umount', ['-l', this.dir], { stdio: 'ignore' });
    } catch {
      // already gone
    }
  }
}
