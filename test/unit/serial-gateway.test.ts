/**
 * Gateway serial pieces without a tty: the `serial` config section, USB-id
 * matching, the sysfs port list (a fake /sys and /dev tree, as on a machine
 * without udev), the ack status for each ingest outcome, and `gateway serial list`.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, validateConfig } from '../../gateway/config.js';
import { ackStatusFor } from '../../gateway/transports/serial-link.js';
import { listFromSysfs, listSerialPorts, matchesUsb, normalizeUsbId } from '../../gateway/transports/serial-ports.js';
import { formatPorts } from '../../gateway/cli/serial.js';
import { AckStatus } from '../../protocols/index.js';

describe('serial config (clause: ports by path or USB ids, baud and device from config)', () => {
  it('defaults to no ports and accepts paths and USB ids', () => {
    expect(validateConfig({}).serial).toEqual({ ports: [], reconnectMinMs: 250, reconnectMaxMs: 5000 });
    const c = validateConfig({
      serial: {
        ports: [
          { path: '/dev/ttyUSB0', device: 'press-01' },
          { vendorId: '10c4', productId: 'EA60', serialNumber: '0001', baudRate: 921600 },
          { vendorId: 403, productId: '0x6001' }, // YAML reads 0403 as the number 403
        ],
      },
    });
    expect(c.serial.ports[0]).toEqual({ path: '/dev/ttyUSB0', device: 'press-01', baudRate: 115200 });
    expect(c.serial.ports[1]!.baudRate).toBe(921600);
    expect(normalizeUsbId(c.serial.ports[2]!.vendorId)).toBe('0403');
    expect(normalizeUsbId(c.serial.ports[2]!.productId)).toBe('6001');
  });

  it.each([
    [{ ports: [{ baudRate: 9600 }] }, 'serial.ports.0: needs a path, or USB ids'],
    [{ ports: [{ path: '/dev/ttyACM0', vendorId: '2341' }] }, 'serial.ports.0: give a path or USB ids, not both'],
    [{ ports: [{ vendorId: '10c' }] }, 'serial.ports.0.vendorId'],
    [{ ports: [{ path: '/dev/ttyS0', baudRate: 12 }] }, 'serial.ports.0.baudRate'],
    [{ ports: [{ path: '/dev/ttyS0', device: 'bad id!' }] }, 'serial.ports.0.device'],
    [{ ports: [{ path: '/dev/ttyS0', parity: 'even' }] }, 'unknown key "parity"'],
  ])('%j is refused naming the key', (serial, msg) => {
    expect(() => validateConfig({ serial })).toThrow(ConfigError);
    expect(() => validateConfig({ serial })).toThrow(msg);
  });
});

describe('USB matching (clause: match by USB vendor/product/serial)', () => {
  const cp2102 = {
    path: '/dev/ttyUSB1',
    vendorId: '10c4',
    productId: 'ea60',
    serialNumber: '0001',
    source: 'sysfs' as const,
  };
  it('matches on the ids given, case- and 0x-insensitively', () => {
    expect(matchesUsb(cp2102, { vendorId: '10C4' })).toBe(true);
    expect(matchesUsb(cp2102, { vendorId: '0x10c4', productId: 'ea60', serialNumber: '0001' })).toBe(true);
    expect(matchesUsb(cp2102, { serialNumber: '0001' })).toBe(true);
    expect(matchesUsb(cp2102, { vendorId: '10c4', serialNumber: '0002' })).toBe(false);
    expect(matchesUsb(cp2102, { vendorId: '1a86' })).toBe(false);
    expect(matchesUsb(cp2102, {})).toBe(false);
    expect(matchesUsb({ path: '/dev/ttyS0', source: 'sysfs' }, { vendorId: '10c4' })).toBe(false);
  });
});

describe('port list without udev (clause: gateway serial list falls back to /sys and /dev/serial/by-id)', () => {
  const root = mkdtempSync(join(tmpdir(), 'outpost-sysfs-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const sys = join(root, 'sys');
  const dev = join(root, 'dev');
  const tty = (name: string, deviceDir: string, driver: string): void => {
    mkdirSync(join(deviceDir, 'tty', name), { recursive: true });
    mkdirSync(join(sys, 'bus', 'x', 'drivers', driver), { recursive: true });
    symlinkSync(join(sys, 'bus', 'x', 'drivers', driver), join(deviceDir, 'driver'));
    symlinkSync(deviceDir, join(deviceDir, 'tty', name, 'device'));
    mkdirSync(join(sys, 'class', 'tty'), { recursive: true });
    symlinkSync(join(deviceDir, 'tty', name), join(sys, 'class', 'tty', name));
    writeFileSync(join(dev, name), '');
  };
  const usbDevice = (dir: string, facts: Record<string, string>): void => {
    mkdirSync(dir, { recursive: true });
    for (const [k, v] of Object.entries(facts)) writeFileSync(join(dir, k), v + '\n');
  };
  mkdirSync(dev, { recursive: true });
  // CP2102 (usb-serial: tty → port → interface → USB device)
  usbDevice(join(sys, 'devices/usb1/1-1'), {
    idVendor: '10c4',
    idProduct: 'ea60',
    serial: '0001',
    manufacturer: 'Silicon Labs',
    product: 'CP2102',
  });
  tty('ttyUSB0', join(sys, 'devices/usb1/1-1/1-1:1.0/ttyUSB0'), 'cp210x');
  // Arduino (cdc_acm: tty → interface → USB device)
  usbDevice(join(sys, 'devices/usb1/1-2'), {
    idVendor: '2341',
    idProduct: '0043',
    serial: '85736323838351F0E1A1',
    manufacturer: 'Arduino (www.arduino.cc)',
  });
  tty('ttyACM0', join(sys, 'devices/usb1/1-2/1-2:1.0'), 'cdc_acm');
  // Pi UART (platform), a legacy PC 8250 port, and a virtual console without a device
  tty('ttyAMA0', join(sys, 'devices/platform/soc/fe201000.serial'), 'uart-pl011');
  tty('ttyS5', join(sys, 'devices/platform/serial8250'), 'serial8250');
  mkdirSync(join(sys, 'devices/virtual/tty/tty0'), { recursive: true });
  symlinkSync(join(sys, 'devices/virtual/tty/tty0'), join(sys, 'class', 'tty', 'tty0'));
  mkdirSync(join(dev, 'serial', 'by-id'), { recursive: true });
  symlinkSync('../../ttyUSB0', join(dev, 'serial', 'by-id', 'usb-Silicon_Labs_CP2102_0001-if00-port0'));

  it('lists USB adapters with their ids, UARTs without, skips consoles and 8250s unless --all', () => {
    const ports = listFromSysfs({ sysRoot: sys, devRoot: dev });
    expect(ports).toEqual([
      {
        path: join(dev, 'ttyACM0'),
        driver: 'cdc_acm',
        vendorId: '2341',
        productId: '0043',
        serialNumber: '85736323838351F0E1A1',
        manufacturer: 'Arduino (www.arduino.cc)',
        source: 'sysfs',
      },
      { path: join(dev, 'ttyAMA0'), driver: 'uart-pl011', source: 'sysfs' },
      {
        path: join(dev, 'ttyUSB0'),
        byId: join(dev, 'serial/by-id/usb-Silicon_Labs_CP2102_0001-if00-port0'),
        driver: 'cp210x',
        vendorId: '10c4',
        productId: 'ea60',
        serialNumber: '0001',
        manufacturer: 'Silicon Labs',
        product: 'CP2102',
        source: 'sysfs',
      },
    ]);
    expect(listFromSysfs({ sysRoot: sys, devRoot: dev, all: true }).map((p) => p.path)).toContain(join(dev, 'ttyS5'));
  });

  it('listSerialPorts({ udev: false }) is the sysfs list; an absent /sys gives an empty list', async () => {
    expect((await listSerialPorts({ udev: false, sysRoot: sys, devRoot: dev })).length).toBe(3);
    expect(await listSerialPorts({ udev: false, sysRoot: join(root, 'nope'), devRoot: join(root, 'nope') })).toEqual(
      [],
    );
  });

  it('`gateway serial list` prints them (table and --json)', () => {
    const run = (...args: string[]) =>
      spawnSync(process.execPath, ['bin/gateway.js', 'serial', 'list', '--sys-root', sys, '--dev-root', dev, ...args], {
        encoding: 'utf8',
      });
    const table = run();
    expect(table.status).toBe(0);
    expect(table.stdout).toContain('10c4:ea60');
    expect(table.stdout).toMatch(
      /ttyUSB0\s+10c4:ea60\s+0001\s+Silicon Labs\s+cp210x\s+\S+usb-Silicon_Labs_CP2102_0001-if00-port0/,
    );
    const json = run('--json')
      .stdout.trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { path: string });
    expect(json.map((p) => p.path)).toEqual(['ttyACM0', 'ttyAMA0', 'ttyUSB0'].map((n) => join(dev, n)));
    expect(formatPorts([])).toBe('no serial ports found');
  });
});

describe('frame-ack status per ingest outcome (clause: ack after durable append; nothing for transient failures)', () => {
  it('maps stored/duplicate/rejected to final statuses and failed to no ack', () => {
    expect(ackStatusFor({ status: 'stored', device: 'd', boot: 1, seq: 2 })).toBe(AckStatus.ok);
    expect(ackStatusFor({ status: 'duplicate', device: 'd', boot: 1, seq: 2 })).toBe(AckStatus.duplicate);
    expect(ackStatusFor({ status: 'rejected', reason: 'bad-signature', detail: '' })).toBe(AckStatus.badSignature);
    expect(ackStatusFor({ status: 'rejected', reason: 'replay', detail: '' })).toBe(AckStatus.replayed);
    expect(ackStatusFor({ status: 'rejected', reason: 'unknown-device', detail: '' })).toBe(AckStatus.rejected);
    expect(ackStatusFor({ status: 'failed', reason: 'store-failed', detail: '' })).toBeUndefined();
    expect(ackStatusFor({ status: 'failed', reason: 'overloaded', detail: '' })).toBeUndefined();
  });
});
