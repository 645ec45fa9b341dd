// Preloaded by tests with NODE_OPTIONS="--import …/record-modules.mjs" and OUTPOST_MODULE_LOG=DIR:
// each node process (and worker thread) writes DIR/<pid>.log with its argv and execArgv, then
// every module URL it resolves, so a test can say what the process actually loaded.
import { appendFileSync } from 'node:fs';
import { register } from 'node:module';
import { join } from 'node:path';
import { isMainThread } from 'node:worker_threads';

const dir = process.env.OUTPOST_MODULE_LOG;
if (dir) {
  const file = join(dir, `${process.pid}.log`);
  if (isMainThread) appendFileSync(file, `${JSON.stringify({ argv: process.argv, execArgv: process.execArgv })}\n`);
  register('./record-modules-hooks.mjs', import.meta.url, { data: { file } });
}
