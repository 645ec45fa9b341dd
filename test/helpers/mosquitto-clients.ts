/** mosquitto_pub / mosquitto_sub as child processes: exit code, stdout and stderr. */
import { spawn } from 'node:child_process';
import { signEd25519 } from '../../gateway/crypto/ed25519.js';
import { encodeConnectToken } from '../../protocols/index.js';

export interface ToolRun {
  readonly code: number | null;
  readonly stdout: Buffer;
  readonly stderr: string;
}

/** Runs a mosquitto client; `input` goes to stdin; killed after `timeoutMs`. */
export function runMosquitto(
  tool: 'mosquitto_pub' | 'mosquitto_sub',
  args: readonly string[],
  opts: { input?: Uint8Array; timeoutMs?: number } = {},
): Promise<ToolRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(tool, [...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const timer = setTimeout(() => child.kill('SIGTERM'), opts.timeoutMs ?? 10_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out), stderr: err });
    });
    child.stdin.end(opts.input ? Buffer.from(opts.input) : undefined);
  });
}

/** A connect token for `subject` signed with `seed`, for gateway `audience`, at `time` (default now). */
export const tokenFor = (subject: string, seed: Uint8Array, audience: string, time = Date.now()): string =>
  encodeConnectToken({ subject, audience, time }, (m) => signEd25519(seed, m));
