// Runs a CLI entry from the compiled dist/ when it was built from the current sources,
// else builds it first (scripts/build.mjs, a few seconds). Only when it cannot build
// (esbuild absent) or with OUTPOST_FROM_SOURCE=1 does it run the TypeScript sources
// through tsx's loader instead (development).
import { ensureBuilt, packageRoot } from '../scripts/build.mjs';

/**
 * @param {string} entry e.g. 'gateway/cli'
 * @param {string[]} first modules to run before the entry, each its own file. A bundle's
 *   imports of packages (aedes, say) run before any code of its own, whatever the order of the
 *   sources' imports: a module that must run before a package loads cannot be in the bundle.
 */
export async function launch(entry, first = []) {
  if (process.env.OUTPOST_FROM_SOURCE !== '1' && (await ensureBuilt())) {
    for (const m of first) await import(new URL(`dist/${m}.js`, `file://${packageRoot}`).href);
    await import(new URL(`dist/${entry}.js`, `file://${packageRoot}`).href);
    return;
  }
  const { register } = await import('tsx/esm/api');
  register();
  await import(new URL(`${entry}.ts`, `file://${packageRoot}`).href);
}
