/**
 * Which bench/*.ts files the report runs, in which order, under which capability. A bench
 * is a file that writes its figures under bench/results; helpers (the ingest bench's load
 * generator, anything in bench/lib/, scratch *.tmp.ts) are not run.
 */

/** Not benches: the report itself and the ingest bench's load generator (a child of ingest.ts). */
const SKIP = new Set(['report', 'load-generator']);
/** Order in the table; benches not listed (new ones) follow in name order. */
const ORDER = [
  'ingest',
  'log',
  'serial',
  'ble',
  'sync',
  'store',
  'fleet',
  'firmware',
  'policy',
  'rules',
  'actuation',
  'export',
];
const CAPABILITY: Record<string, string> = {
  ingest: 'ingest (MQTT)',
  log: 'block log',
  serial: 'serial link',
  ble: 'BLE link',
  sync: 'sibling sync',
  store: 'store at scale',
  'store-merged': 'store at scale',
  fleet: 'firmware-sim',
  firmware: 'firmware updates',
  'firmware-rollout': 'firmware updates',
  actuation: 'actuation',
  memory: 'memory and start',
  'net-security': 'network security',
  export: 'export (PostgreSQL, rollups)',
};
export const capabilityOf = (name: string): string =>
  CAPABILITY[name] ?? (name.startsWith('policy') ? 'policy' : name.startsWith('rules') ? 'rules' : name);
export function discover(files: readonly string[], read: (f: string) => string): string[] {
  const names = files
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts') && !f.endsWith('.test.ts') && !f.endsWith('.tmp.ts'))
    .map((f) => f.slice(0, -3))
    .filter((n) => {
      if (SKIP.has(n)) return false;
      const src = read(`${n}.ts`);
      return /\bresults\b/.test(src) && src.includes('writeFileSync');
    });
  const rank = (n: string): number => {
    const i = ORDER.findIndex((o) => n === o || n.startsWith(o));
    return i < 0 ? ORDER.length : i;
  };
  return names.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}
