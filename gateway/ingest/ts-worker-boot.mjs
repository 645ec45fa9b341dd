// Worker bootstrap for running a TypeScript worker module from source: Node 20
// ignores loader flags in a worker's execArgv, so register tsx here first.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.tsModule);
