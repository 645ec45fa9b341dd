/**
 * A device's own transport for commands: the one its last stored frame arrived on (MQTT,
 * serial or BLE). MQTT publishes on `outpost/v1/dev/{device}/cmd` through the embedded broker;
 * serial and BLE write the frame, COBS-framed, on the device's line or connection.
 */
import { topics } from '../../protocols/index.js';
import type { CommandTransport } from '../../rules/actuation/index.js';

export interface RouteTargets {
  readonly mqtt?: { publish(topic: string, payload: Uint8Array, opts?: { qos?: 0 | 1 }): Promise<void> } | undefined;
  readonly serial?: { send(device: string, frame: Uint8Array): Promise<boolean> } | undefined;
  readonly ble?: { send(device: string, frame: Uint8Array): Promise<boolean> } | undefined;
}

export class DeviceRoutes implements CommandTransport {
  private readonly last = new Map<string, string>();
  readonly sent: Record<string, number> = {};
  noRoute = 0;

  constructor(private readonly targets: () => RouteTargets) {}

  /** A stored frame from `device` arrived over `transport`. */
  heard(device: string, transport: string): void {
    this.last.set(device, transport);
  }

  transportOf(device: string): string | undefined {
    return this.last.get(device);
  }

  async send(device: string, frame: Uint8Array): Promise<boolean> {
    const via = this.last.get(device);
    const t = this.targets();
    let ok = false;
    if (via === 'mqtt' && t.mqtt) {
      await t.mqtt.publish(topics.cmd(device), frame, { qos: 1 });
      ok = true;
    } else if (via === 'serial' && t.serial) ok = await t.serial.send(device, frame);
    else if (via === 'ble' && t.ble) ok = await t.ble.send(device, frame);
    if (ok) this.sent[via!] = (this.sent[via!] ?? 0) + 1;
    else this.noRoute++;
    return ok;
  }
}
