/** `gateway serial list`: candidate serial ports, with or without udev. */
import { parseArgs } from 'node:util';
import type { SerialPortInfo } from '../transports/serial-ports.js';
import { UsageError } from './args.js';
import { toJson } from './json.js';

export const serialHelp = `gateway serial list [--json] [--all] [--sysfs]
  Candidate serial ports: path, USB vendor:product, serial number, manufacturer and the
  /dev/serial/by-id link. Uses udev when present, else reads /sys/class/tty (containers,
  minimal images). --all includes legacy 8250 UARTs; --sysfs skips udev.`;

const cell = (v: string | undefined): string => v ?? '-';

export function formatPorts(ports: readonly SerialPortInfo[]): string {
  if (ports.length === 0) return 'no serial ports found';
  const rows = ports.map((p) => [
    p.path,
    p.vendorId || p.productId ? `${cell(p.vendorId)}:${cell(p.productId)}` : '-',
    cell(p.serialNumber),
    cell(p.manufacturer ?? p.product),
    cell(p.driver),
    cell(p.byId),
  ]);
  const head = ['PATH', 'VID:PID', 'SERIAL', 'MANUFACTURER', 'DRIVER', 'BY-ID'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]): string => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return [line(head), ...rows.map(line)].join('\n');
}

export async function serial(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const { values } = parseArgs({
    args: rest,
    options: {
      json: { type: 'boolean' },
      all: { type: 'boolean' },
      sysfs: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
      // For tests: read a fake sysfs / dev tree.
      'sys-root': { type: 'string' },
      'dev-root': { type: 'string' },
    },
  });
  if (values.help || sub === 'help' || sub === '--help') {
    console.log(serialHelp);
    return 0;
  }
  if (sub !== 'list') throw new UsageError(`usage: ${serialHelp}`);
  // serialport is loaded by this command only, not by every gateway CLI start.
  const { listSerialPorts } = await import('../transports/serial-ports.js');
  const ports = await listSerialPorts({
    udev: !values.sysfs && values['sys-root'] === undefined,
    all: values.all === true,
    ...(values['sys-root'] !== undefined && { sysRoot: values['sys-root'] }),
    ...(values['dev-root'] !== undefined && { devRoot: values['dev-root'] }),
  });
  if (values.json) for (const p of ports) console.log(toJson(p));
  else {
    console.log(formatPorts(ports));
    if (ports.some((p) => p.source === 'sysfs'))
      console.log('(read from /sys/class/tty and /dev/serial/by-id: udev is not available)');
  }
  return 0;
}
