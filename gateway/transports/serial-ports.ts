/**
 * Finding serial ports: serialport's own list (which asks udev) when udev is
 * there, else sysfs (`/sys/class/tty/<name>/device`, walking up to the USB
 * device for idVendor / idProduct / serial / manufacturer), plus the stable
 * `/dev/serial/by-id` names either way. Works in containers and on minimal
 * images without udevadm. Also the USB-id matching used by the transport.
 */
import { existsSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { basename, join } from 'node:path';
import { SerialPort } from 'serialport';

export interface SerialPortInfo {
  /** The device node to open, e.g. /dev/ttyUSB0. */
  readonly path: string;
  /** A stable /dev/serial/by-id/… link to it, when udev made one. */
  readonly byId?: string;
  readonly manufacturer?: string;
  readonly product?: string;
  /** Four lower-case hex digits. */
  readonly vendorId?: string;
  readonly productId?: string;
  readonly serialNumber?: string;
  /** Kernel driver (cp210x, ch341-uart, ftdi_sio, cdc_acm, pl011, …) when known. */
  readonly driver?: string;
  /** Where the facts came from. */
  readonly source: 'udev' | 'sysfs';
}

export interface ListOptions {
  /** Ask serialport / udev first (default true); false = sysfs only. */
  readonly udev?: boolean;
  /** Root of sysfs (default /sys) and of device nodes (default /dev); tests point these at a fake tree. */
  readonly sysRoot?: string;
  readonly devRoot?: string;
  /** Include legacy 8250 UARTs (ttyS0..31 on a PC, mostly absent hardware). Default false. */
  readonly all?: boolean;
}

/** What a configured port asks for; at least one field is set. */
export interface UsbMatch {
  readonly vendorId?: string | number | undefined;
  readonly productId?: string | number | undefined;
  readonly serialNumber?: string | undefined;
}

/** USB ids as 4 lower-case hex digits: accepts "10C4", "0x10c4", and YAML's number for all-digit ids (0403 → 403). */
export function normalizeUsbId(id: string | number | undefined): string | undefined {
  if (id === undefined) return undefined;
  if (typeof id === 'number') return String(id).padStart(4, '0');
  return id.toLowerCase().replace(/^0x/, '').padStart(4, '0');
}

export function matchesUsb(p: SerialPortInfo, m: UsbMatch): boolean {
  if (m.vendorId === undefined && m.productId === undefined && m.serialNumber === undefined) return false;
  if (m.vendorId !== undefined && normalizeUsbId(p.vendorId) !== normalizeUsbId(m.vendorId)) return false;
  if (m.productId !== undefined && normalizeUsbId(p.productId) !== normalizeUsbId(m.productId)) return false;
  if (m.serialNumber !== undefined && p.serialNumber !== m.serialNumber) return false;
  return true;
}

const readText = (file: string): string | undefined => {
  try {
    const t = readFileSync(file, 'utf8').trim();
    return t.length > 0 ? t : undefined;
  } catch {
    return undefined;
  }
};
const real = (p: string): string | undefined => {
  try {
    return realpathSync(p);
  } catch {
    return undefined;
  }
};

/** /dev/serial/by-id links, keyed by the node they resolve to. */
function byIdLinks(devRoot: string): Map<string, string> {
  const dir = join(devRoot, 'serial', 'by-id');
  const out = new Map<string, string>();
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch {
    return out;
  }
  for (const n of names.sort()) {
    const target = real(join(dir, n));
    if (target && !out.has(target)) out.set(target, join(dir, n));
  }
  return out;
}

/** Ports from sysfs: every tty with a backing device; USB facts from the nearest ancestor with idVendor. */
export function listFromSysfs(opts: ListOptions = {}): SerialPortInfo[] {
  const sys = opts.sysRoot ?? '/sys';
  const dev = opts.devRoot ?? '/dev';
  const classDir = join(sys, 'class', 'tty');
  let names: string[];
  try {
    names = readdirSync(classDir);
  } catch {
    return [];
  }
  const links = byIdLinks(dev);
  const out: SerialPortInfo[] = [];
  for (const name of names.sort()) {
    const devDir = real(join(classDir, name, 'device'));
    if (!devDir) continue; // virtual terminals, ptys, console: no backing device
    const driverPath = real(join(devDir, 'driver'));
    const driver = driverPath ? basename(driverPath) : undefined;
    if (!opts.all && driver === 'serial8250') continue;
    let usb: string | undefined;
    for (let d = devDir, i = 0; i < 6 && d.length > sys.length; i++, d = join(d, '..')) {
      if (existsSync(join(d, 'idVendor'))) {
        usb = d;
        break;
      }
    }
    const path = join(dev, name);
    const info: Record<string, string> = { path };
    const byId = links.get(path) ?? links.get(real(path) ?? '');
    if (byId) info.byId = byId;
    if (driver) info.driver = driver;
    if (usb) {
      const set = (k: string, file: string): void => {
        const v = readText(join(usb, file));
        if (v !== undefined) info[k] = v;
      };
      set('vendorId', 'idVendor');
      set('productId', 'idProduct');
      set('serialNumber', 'serial');
      set('manufacturer', 'manufacturer');
      set('product', 'product');
      if (info.vendorId) info.vendorId = normalizeUsbId(info.vendorId)!;
      if (info.productId) info.productId = normalizeUsbId(info.productId)!;
    }
    out.push({ ...(info as { path: string }), source: 'sysfs' });
  }
  // A by-id link whose node sysfs did not show (unusual) is still a candidate.
  for (const [target, link] of links)
    if (!out.some((p) => p.path === target)) out.push({ path: target, byId: link, source: 'sysfs' });
  return out;
}

/** Candidate serial ports: udev (through serialport) when available, else sysfs. */
export async function listSerialPorts(opts: ListOptions = {}): Promise<SerialPortInfo[]> {
  if (opts.udev !== false) {
    try {
      const list = await SerialPort.list();
      const links = byIdLinks(opts.devRoot ?? '/dev');
      return list.map((p) => {
        const info: Record<string, string> = { path: p.path };
        const byId = links.get(p.path);
        if (byId) info.byId = byId;
        if (p.manufacturer) info.manufacturer = p.manufacturer;
        if (p.vendorId) info.vendorId = normalizeUsbId(p.vendorId)!;
        if (p.productId) info.productId = normalizeUsbId(p.productId)!;
        if (p.serialNumber) info.serialNumber = p.serialNumber;
        return { ...(info as { path: string }), source: 'udev' as const };
      });
    } catch {
      // no udevadm (containers, minimal images): fall through to sysfs
    }
  }
  return listFromSysfs(opts);
}
