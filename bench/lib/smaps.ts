/**
 * Where a process's resident memory is, from /proc/PID/smaps (Linux): each mapping's Rss summed
 * by what backs it. File-backed pages are clean copies of a file the kernel may drop under
 * memory pressure (they are in RSS only while mapped); anonymous pages are the process's own
 * (V8 heaps of the main thread and each worker, malloc arenas, thread stacks).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface SmapsBreakdown {
  /** MB resident, by group. */
  readonly lmdb: number;
  readonly nodeBinary: number;
  /** Native addons and shared libraries (.node, .so). */
  readonly libraries: number;
  readonly otherFiles: number;
  /** The brk heap (malloc's main arena). */
  readonly brkHeap: number;
  /** Anonymous mappings of 1 MB or more resident: V8 heap spaces, malloc arenas of threads. */
  readonly anonLarge: number;
  readonly anonSmall: number;
  readonly stacks: number;
  readonly total: number;
  /** Mappings of the lmdb file and how much of each is resident (MB). */
  readonly lmdbMappings: readonly { readonly sizeMb: number; readonly rssMb: number }[];
}

const MB = 1024;

export function smapsBreakdown(pid: number | 'self'): SmapsBreakdown {
  const text = readFileSync(`/proc/${pid}/smaps`, 'utf8');
  const g = { lmdb: 0, nodeBinary: 0, libraries: 0, otherFiles: 0, brkHeap: 0, anonLarge: 0, anonSmall: 0, stacks: 0 };
  const lmdbMappings: { sizeMb: number; rssMb: number }[] = [];
  let path = '';
  let size = 0;
  for (const line of text.split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \d+\s*(.*)$/.exec(line);
    if (head) {
      path = head[1]!.trim();
      continue;
    }
    if (line.startsWith('Size:')) size = Number(line.split(/\s+/)[1]);
    if (!line.startsWith('Rss:')) continue;
    const kb = Number(line.split(/\s+/)[1]);
    if (path.endsWith('.lmdb') || path.endsWith('.mdb')) {
      g.lmdb += kb;
      lmdbMappings.push({ sizeMb: size / MB, rssMb: kb / MB });
    } else if (path.endsWith('/node') || /\/node$/.test(path)) g.nodeBinary += kb;
    else if (/\.(node|so)(\.[\d.]+)?$/.test(path)) g.libraries += kb;
    else if (path === '[heap]') g.brkHeap += kb;
    else if (path.startsWith('[stack')) g.stacks += kb;
    else if (path.startsWith('/')) g.otherFiles += kb;
    else if (kb >= MB) g.anonLarge += kb;
    else g.anonSmall += kb;
  }
  const mb = Object.fromEntries(Object.entries(g).map(([k, v]) => [k, v / MB])) as typeof g;
  const total = Object.values(mb).reduce((a, b) => a + b, 0);
  return { ...mb, total, lmdbMappings };
}

/**
 * Drops a file's pages from the page cache (GNU dd: `iflag=nocache count=0` advises
 * POSIX_FADV_DONTNEED over the whole file), so a gateway started on a store the bench just
 * copied or read maps only what its own reads bring in, as on a device after a reboot: with the
 * file cached, the kernel's fault-around maps up to 16 cached neighbours of every page a read
 * touches. Returns false (and the bench says so) where dd cannot do it.
 */
export function dropPageCache(file: string): boolean {
  spawnSync('sync', [file]);
  return spawnSync('dd', [`if=${file}`, 'iflag=nocache', 'count=0', 'status=none']).status === 0;
}
