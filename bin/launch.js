// Runs a CLI entry from the compiled dist/ when it was built from the current sources,
// else builds it first (scripts/build.mjs, a few seconds). Only when it cannot build
// (esbuild absent) or with OUTPOST_FROM_SOURCE=1 does it run the TypeScript sources
// through tsx's loader instead (development).
import { ensureBuilt, packageRoot } from '../scripts/build.mjs';

/** @param {string} entry e.g. 'gateway/cli' */
export async function launch(entry) {
  if (process.env.OUTPOST_FROM_SOURCE !== '1' && (await ensureBuilt())) {
    await import(new URL(`dist/${entry}.js`, `file://${packageRoot}`).href);
    return;
  }
  const { register } = await import('tsx/esm/api');
  register();
  await import(new URL(`${entry}.ts`, `file://${packageRoot}`).href);
}
