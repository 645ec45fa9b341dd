#!/usr/bin/env node
/**
 * Compiles the TypeScript sources to dist/ (`npm run build`, run by `npm ci` through
 * `prepare`): each .ts file transpiled on its own by esbuild (types are checked by
 * `npm run typecheck`, not here), and every other file the code reads at run time copied
 * beside it (dashboard files, openapi.json, board profiles, rule examples), so the
 * `new URL('./…', import.meta.url)` paths hold in dist/ as in the sources. Then each file node
 * starts by path is bundled over its own output (ENTRIES, below), which is what a start loads.
 *
 * dist/.source-hash records the SHA-256 of the sources it was built from (as Zigbee2MQTT
 * does): bin/launch.js runs dist/ only when it matches the sources, else builds first.
 */
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/** What dist/ is built from, relative to the package root. */
const SOURCES = ['protocols', 'gateway', 'firmware-sim', 'rules', 'hardware/profiles'];
/** Files whose change also calls for a rebuild. */
const INPUTS = ['package.json', 'tsconfig.json', 'scripts/build.mjs'];
const HASH_FILE = '.source-hash';
const READ_ONLY = new Set(['EACCES', 'EROFS', 'EPERM']);

export const packageRoot = fileURLToPath(new URL('..', import.meta.url));

function walk(root, dir, out) {
  for (const e of readdirSync(join(root, dir), { withFileTypes: true })) {
    const rel = join(dir, e.name);
    if (e.isDirectory()) walk(root, rel, out);
    else if (e.isFile() && !e.name.endsWith('.md')) out.push(rel);
  }
  return out;
}

const sourceFiles = (root) => SOURCES.flatMap((d) => (existsSync(join(root, d)) ? walk(root, d, []) : [])).sort();

/** SHA-256 over every source file's path and content, in a stable order. */
export function sourceHash(root = packageRoot) {
  const h = createHash('sha256');
  for (const f of [...sourceFiles(root), ...INPUTS.filter((f) => existsSync(join(root, f)))]) {
    h.update(`${f}\0`);
    h.update(readFileSync(join(root, f)));
    h.update('\0');
  }
  return h.digest('hex');
}

/** True when dist/ was built from the sources as they are now. */
export function isCurrent(root = packageRoot) {
  const file = join(root, 'dist', HASH_FILE);
  return existsSync(file) && readFileSync(file, 'utf8').trim() === sourceHash(root);
}

/**
 * The files node starts by path (the two CLIs, the verify worker thread). Each is also bundled
 * over its per-file output: a start otherwise resolves, reads and links ~900 modules (235 of
 * ours, rxjs's 223 CommonJS files, zod's 95, yaml's 72), most of its time (bench/README.md,
 * "Start to first frame acked: where the time goes").
 */
const ENTRIES = ['gateway/cli.ts', 'gateway/ingest/verify-worker.ts', 'firmware-sim/cli.ts'];
/**
 * Pure-JavaScript packages bundled in (the many-file ones a start loads). Every other package
 * stays an import: native addons (lmdb, cbor-x, serialport, noble), packages loaded only when
 * configured (pg, mqtt, ws), and aedes with mqtt-packet, whose instances node's require cache
 * holds are patched (gateway/transports/quiet-debug.ts, mqtt-broker.ts). rxjs's exports send
 * node to its CommonJS build; the bundle takes its ES-module one (tree-shaken).
 */
const BUNDLED = new Set([
  'rxjs',
  'tslib',
  'zod',
  'yaml',
  'prom-client',
  '@opentelemetry/api',
  'tdigest',
  'bintrees',
  '@marcbachmann/cel-js',
  '@noble/curves',
  '@noble/hashes',
  '@noble/ed25519',
  '@noble/ciphers',
  // pino and what it requires at load; its transports (workers started by path) are not used.
  'pino',
  '@pinojs/redact',
  'atomic-sleep',
  'on-exit-leak-free',
  'pino-abstract-transport',
  'pino-std-serializers',
  'process-warning',
  'quick-format-unescaped',
  'real-require',
  'safe-stable-stringify',
  'sonic-boom',
  'thread-stream',
]);
const packageName = (spec) =>
  spec
    .split('/')
    .slice(0, spec.startsWith('@') ? 2 : 1)
    .join('/');

/**
 * Bundles one entry over its per-file output, its lazily imported parts split into chunks
 * beside it (so a part the config leaves off is still not loaded). Every output of the
 * bundle lies in the entry's directory, so each source's `import.meta.url` is rewritten to
 * the URL its per-file output has (`new URL('./x', import.meta.url)` finds the files copied
 * beside it, e.g. the dashboard and openapi.json).
 */
async function bundle(root, esbuild, entry) {
  const outDir = dirname(join(root, 'dist', entry));
  const rel = (file) => {
    const r = relative(outDir, join(root, 'dist', relative(root, file))).replace(/\.ts$/, '.js');
    return r.startsWith('.') ? r : `./${r}`;
  };
  await esbuild({
    absWorkingDir: root,
    entryPoints: [entry],
    outdir: join(root, 'dist'),
    outbase: root,
    chunkNames: `${dirname(entry)}/[name]-[hash]`,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    sourcemap: true,
    allowOverwrite: true,
    // CommonJS packages bundled in (yaml) require node built-ins: esbuild's require shim needs one.
    banner: {
      js: "import { createRequire as outpostCreateRequire } from 'node:module';\nconst require = outpostCreateRequire(import.meta.url);",
    },
    tsconfig: join(root, 'tsconfig.json'),
    logLevel: 'warning',
    plugins: [
      {
        name: 'outpost-bundle',
        setup(b) {
          b.onResolve({ filter: /^[^./]/ }, (a) => {
            if (a.path.startsWith('node:') || !BUNDLED.has(packageName(a.path)))
              return { path: a.path, external: true };
            if (a.path === 'rxjs') return { path: join(root, 'node_modules/rxjs/dist/esm/index.js') };
            return undefined;
          });
          // zod's namespace of ~40 translated error-message sets (360 KB, a sixth of the bundle):
          // nothing here sets a locale, and the English default is imported on its own.
          b.onResolve({ filter: /\/locales\/index\.js$/ }, (a) =>
            a.importer.includes('/node_modules/zod/') ? { path: 'zod-locales', namespace: 'outpost-empty' } : undefined,
          );
          b.onLoad({ filter: /.*/, namespace: 'outpost-empty' }, () => ({ contents: 'export {};', loader: 'js' }));
          b.onLoad({ filter: /\.[mc]?ts$/ }, (a) => {
            if (a.path.includes('/node_modules/')) return undefined;
            const text = readFileSync(a.path, 'utf8').replaceAll(
              'import.meta.url',
              `new URL(${JSON.stringify(rel(a.path))}, import.meta.url).href`,
            );
            return { contents: text, loader: 'ts' };
          });
        },
      },
    ],
  });
}

/** Builds dist/ afresh; returns the time it took in ms. */
export async function build(root = packageRoot) {
  const t0 = performance.now();
  const { build: esbuild } = await import('esbuild');
  const files = sourceFiles(root);
  const dist = join(root, 'dist');
  rmSync(dist, { recursive: true, force: true });
  await esbuild({
    absWorkingDir: root,
    entryPoints: files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts')),
    outdir: dist,
    outbase: root,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    sourcemap: true,
    tsconfig: join(root, 'tsconfig.json'),
    logLevel: 'warning',
  });
  await Promise.all(ENTRIES.map((entry) => bundle(root, esbuild, entry)));
  for (const f of files.filter((f) => !f.endsWith('.ts'))) {
    mkdirSync(dirname(join(dist, f)), { recursive: true });
    copyFileSync(join(root, f), join(dist, f));
  }
  writeFileSync(join(dist, HASH_FILE), `${sourceHash(root)}\n`);
  return performance.now() - t0;
}

/**
 * Makes dist/ current: nothing when it is, else one build (a lock directory keeps
 * processes starting at once from building over each other). Returns false when it
 * cannot build here (esbuild not installed, or a read-only install such as the Pi unit's
 * ProtectSystem=strict), so the caller can fall back to the sources.
 */
export async function ensureBuilt(root = packageRoot, say = (msg) => process.stderr.write(`${msg}\n`)) {
  if (isCurrent(root)) return true;
  try {
    await import('esbuild');
  } catch {
    return false;
  }
  const lock = join(root, '.dist.lock');
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch (e) {
      if (READ_ONLY.has(e.code)) {
        say(`outpost: dist/ is not current and ${root} is not writable (${e.code}): running from source`);
        return false;
      }
      if (e.code !== 'EEXIST') throw e;
      // A lock older than a build can take was left by a killed process.
      if (Date.now() - statSync(lock, { throwIfNoEntry: false })?.mtimeMs > 60_000 || Date.now() > deadline)
        rmSync(lock, { recursive: true, force: true });
      else await new Promise((r) => setTimeout(r, 50));
    }
  }
  try {
    if (!isCurrent(root)) {
      const ms = await build(root);
      say(`outpost: sources changed since dist/ was built: rebuilt in ${(ms / 1000).toFixed(1)} s`);
    }
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
  return true;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const ms = await build();
  console.log(
    `dist/: ${relative(process.cwd(), join(packageRoot, 'dist')) || '.'} built in ${(ms / 1000).toFixed(1)} s`,
  );
}
