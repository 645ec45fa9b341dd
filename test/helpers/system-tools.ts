/**
 * System tools some tests need (Debian packages). A test or suite that needs one takes
 * `needs(...)` as its options: `describe('…', needs('mosquitto'), () => …)`. With the tools
 * present it runs; without them it is skipped and its task meta names the missing tools
 * (`missingTools`), which test/helpers/skip-report.ts counts into one line per tool at the
 * end of the run, with the install hint. Under CI=true or OUTPOST_TEST_ALL=1 a missing tool
 * is a failure instead. `npm run setup:system` (scripts/setup-system.sh) installs them all;
 * keep its package list and this table in step.
 */
import { accessSync, constants, existsSync, readdirSync } from 'node:fs';
import { delimiter, join } from 'node:path';

export interface SystemTool {
  /** How to tell it is there: an executable on PATH or a file that must exist. */
  readonly probe: { readonly cmd: string } | { readonly file: string };
  /** The Debian package that brings it. */
  readonly deb: string;
}

const cmd = (c: string) => ({ cmd: c });

export const SYSTEM_TOOLS = {
  socat: { probe: cmd('socat'), deb: 'socat' },
  mosquitto: { probe: cmd('mosquitto'), deb: 'mosquitto' },
  'mosquitto-clients': { probe: cmd('mosquitto_sub'), deb: 'mosquitto-clients' },
  cc: { probe: cmd('cc'), deb: 'gcc' },
  make: { probe: cmd('make'), deb: 'make' },
  libsodium: { probe: { file: '/usr/include/sodium.h' }, deb: 'libsodium-dev' },
  clang: { probe: cmd('clang'), deb: 'clang libclang-rt-14-dev' },
  'arm-none-eabi-gcc': {
    probe: cmd('arm-none-eabi-gcc'),
    deb: 'gcc-arm-none-eabi libnewlib-arm-none-eabi',
  },
  chromium: { probe: cmd('chromium'), deb: 'chromium' },
  'systemd-analyze': { probe: cmd('systemd-analyze'), deb: 'systemd' },
  tcpdump: { probe: cmd('tcpdump'), deb: 'tcpdump' },
  postgres: { probe: { file: '/usr/lib/postgresql' }, deb: 'postgresql' },
} as const satisfies Record<string, SystemTool>;

export type ToolName = keyof typeof SYSTEM_TOOLS;

const seen = new Map<ToolName, boolean>();

export function haveTool(name: ToolName): boolean {
  let ok = seen.get(name);
  if (ok === undefined) {
    const { probe } = SYSTEM_TOOLS[name] as SystemTool;
    if ('file' in probe) ok = existsSync(probe.file) && (name !== 'postgres' || postgresBinDir() !== undefined);
    else ok = onPath(probe.cmd) !== undefined;
    seen.set(name, ok);
  }
  return ok;
}

/** The executable `cmd` resolves to on PATH, as the shell would find it, or undefined. */
export function onPath(cmd: string, path = process.env.PATH ?? ''): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (dir === '') continue;
    const file = join(dir, cmd);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here: the next directory
    }
  }
  return undefined;
}

/** The newest installed PostgreSQL server's bin directory (Debian: /usr/lib/postgresql/N/bin). */
export function postgresBinDir(): string | undefined {
  if (!existsSync('/usr/lib/postgresql')) return undefined;
  const versions = readdirSync('/usr/lib/postgresql')
    .filter((v) => existsSync(`/usr/lib/postgresql/${v}/bin/postgres`))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? undefined : `/usr/lib/postgresql/${versions[0]}/bin`;
}

/** `sudo apt-get install …` for a tool: the hint the skip report prints. */
export const installHint = (name: ToolName): string => `sudo apt-get install ${SYSTEM_TOOLS[name].deb}`;

export const strictTools = (): boolean => process.env.CI === 'true' || process.env.OUTPOST_TEST_ALL === '1';

declare module 'vitest' {
  interface TaskMeta {
    /** Tools a skipped test lacked (set by `needs`, read by the skip report). */
    missingTools?: string[];
  }
}

/**
 * Test or suite options that skip it when any of `names` is missing, naming them in the
 * task's meta for the end-of-run report. In strict mode (CI) a missing tool throws, so the
 * test file fails instead of skipping.
 */
export function needs(...names: ToolName[]): { skip: boolean; meta: { missingTools: string[] } } {
  const missing = names.filter((n) => !haveTool(n));
  if (missing.length > 0 && strictTools())
    throw new Error(`${describeMissing(missing)} (CI=true or OUTPOST_TEST_ALL=1: missing tools fail)`);
  return { skip: missing.length > 0, meta: { missingTools: missing } };
}

const describeMissing = (missing: ToolName[]): string =>
  missing.map((n) => `${n}: not installed (${installHint(n)})`).join('; ');

/**
 * The skip reason when any of `names` is missing, else false, for `describe.skipIf(…)`.
 * Prefer `needs`: a test skipped through `skipIf` is not counted in the end-of-run report.
 */
export function skipUnless(...names: ToolName[]): string | false {
  const { skip, meta } = needs(...names);
  return skip ? describeMissing(meta.missingTools as ToolName[]) : false;
}
