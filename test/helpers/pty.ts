/**
 * A pty pair from socat, for serial tests: `a` and `b` are symlinks to the two
 * /dev/pts nodes; bytes written to one are read from the other. `unplug()`
 * ends socat (both nodes disappear, as when a USB adapter is pulled) and
 * `plug()` starts it again, optionally under other link names.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { onTestFinished } from 'vitest';

export class PtyPair {
  private proc: ChildProcess | undefined;

  constructor(
    public a: string,
    public b: string,
  ) {}

  static async open(dir: string, a = 'a', b = 'b'): Promise<PtyPair> {
    const p = new PtyPair(join(dir, a), join(dir, b));
    await p.plug();
    return p;
  }

  get running(): boolean {
    return this.proc !== undefined;
  }

  /** Starts socat (with new link names if given) and waits for both links. */
  async plug(a = this.a, b = this.b): Promise<void> {
    if (this.proc) throw new Error('pty pair already running');
    this.a = a;
    this.b = b;
    const proc = spawn('socat', [`pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`], { stdio: 'ignore' });
    this.proc = proc;
    proc.once('exit', () => {
      if (this.proc === proc) this.proc = undefined;
    });
    const end = Date.now() + 5000;
    while (!(existsSync(a) && existsSync(b))) {
      if (Date.now() > end) throw new Error('socat did not create its ptys');
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Ends socat (SIGTERM: it removes its links) and waits for it to exit. */
  async unplug(): Promise<void> {
    const proc = this.proc;
    if (!proc) return;
    this.proc = undefined;
    await killAndWait(proc, 'SIGTERM');
  }
}

/** `PtyPair.open` inside a test: unplugged (socat ended) when the test finishes, also when it fails. */
export async function testPty(dir: string, a?: string, b?: string): Promise<PtyPair> {
  const pty = await PtyPair.open(dir, a, b);
  onTestFinished(() => pty.unplug());
  return pty;
}

/** Sends `signal` to a child process (unless it has already exited) and waits for its exit. */
export function killAndWait(proc: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  return new Promise<void>((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
    proc.once('exit', () => resolve());
    proc.kill(signal);
  });
}
