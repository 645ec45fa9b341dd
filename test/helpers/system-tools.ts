/**
 * System tools some tests need (Debian packages). A test that needs one calls
 * `skipUnless(...)`: with the tools present it runs; without them it is skipped with a
 * named reason and an install hint, except under CI=true or OUTPOST_TEST_ALL=1, where a
 * missing tool is a failure (CI installs everything with scripts/setup-system.sh).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';

export interface SystemTool {
  /** How to tell it is there: a command on PATH (run with `args`) or a file that must exist. */
  readonly probe: { readonly cmd: string; readonly args: readonly string[] } | { readonly file: string };
  /** The Debian package that brings it. */
  readonly deb: string;
}

const cmd = (c: string, ...args: string[]) => ({ cmd: c, args });

export const SYSTEM_TOOLS = {
  socat: { probe: cmd('socat', '-V'), deb: 'socat' },
  mosquitto: { probe: cmd('mosquitto', '-h'), deb: 'mosquitto' },
  'mosquitto-clients': { probe: cmd('mosquitto_sub', '--help'), deb: 'mosquitto-clients' },
  cc: { probe: cmd('cc', '--version'), deb: 'gcc' },
  make: { probe: cmd('make', '--version'), deb: 'make' },
  libsodium: { probe: { file: '/usr/include/sodium.h' }, deb: 'libsodium-dev' },
  clang: { probe: cmd('clang', '--version'), deb: 'clang libclang-rt-14-dev' },
  'arm-none-eabi-gcc': {
    probe: cmd('arm-none-eabi-gcc', '--version'),
    deb: 'gcc-arm-none-eabi libnewlib-arm-none-eabi',
  },
  chromium: { probe: cmd('chromium', '--version'), deb: 'chromium' },
  'systemd-analyze': { probe: cmd('systemd-analyze', '--version'), deb: 'systemd' },
  tcpdump: { probe: cmd('tcpdump', '--version'), deb: 'tcpdump' },
  postgres: { probe: { file: '/usr/lib/postgresql' }, deb: 'postgresql' },
  openssl: { probe: cmd('openssl', 'version'), deb: 'openssl' },
} as const satisfies Record<string, SystemTool>;

export type ToolName = keyof typeof SYSTEM_TOOLS;

const seen = new Map<ToolName, boolean>();

export function haveTool(name: ToolName): boolean {
  let ok = seen.get(name);
  if (ok === undefined) {
    const { probe } = SYSTEM_TOOLS[name] as SystemTool;
    if ('file' in probe) ok = existsSync(probe.file) && (name !== 'postgres' || postgresBinDir() !== undefined);
    else {
      try {
        execFileSync(probe.cmd, [...probe.args], { stdio: 'ignore', timeout: 10_000 });
        ok = true;
      } catch (e) {
        // Present but exiting non-zero for --help still counts: only "not found" is missing.
        ok = (e as NodeJS.ErrnoException).code !== 'ENOENT';
      }
    }
    seen.set(name, ok);
  }
  return ok;
}

/** The newest installed PostgreSQL server's bin directory (Debian: /usr/lib/postgresql/N/bin). */
export function postgresBinDir(): string | undefined {
  if (!existsSync('/usr/lib/postgresql')) return undefined;
  const versions = readdirSync('/usr/lib/postgresql')
    .filter((v) => existsSync(`/usr/lib/postgresql/${v}/bin/postgres`))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? undefined : `/usr/lib/postgresql/${versions[0]}/bin`;
}

export const strictTools = (): boolean => process.env.CI === 'true' || process.env.OUTPOST_TEST_ALL === '1';

/**
 * The skip reason when any of `names` is missing, else false: use as
 * `describe.skipIf(skipUnless('mosquitto'))(…)`. In strict mode (CI) a missing tool throws,
 * so the test file fails instead of skipping.
 */
export function skipUnless(...names: ToolName[]): string | false {
  const missing = names.filter((n) => !haveTool(n));
  if (missing.length === 0) return false;
  const reason = missing.map((n) => `${n}: not installed (sudo apt-get install ${SYSTEM_TOOLS[n].deb})`).join('; ');
  if (strictTools()) throw new Error(`${reason} (CI=true or OUTPOST_TEST_ALL=1: missing tools fail)`);
  console.warn(`skipped: ${reason}`);
  return reason;
}
