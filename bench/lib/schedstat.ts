import { readFileSync } from 'node:fs';

/**
 * Time this process's main thread has spent runnable but waiting for a CPU, in ms
 * (/proc/self/schedstat, second field, ns; 0 where there is no such file). Wall time less its
 * growth is what the main thread's work would take on a box of its own, whatever the other jobs
 * sharing the box do.
 */
export function runQueueMs(): number {
  try {
    return Number(readFileSync('/proc/self/schedstat', 'utf8').split(' ')[1]) / 1e6;
  } catch {
    return 0;
  }
}
