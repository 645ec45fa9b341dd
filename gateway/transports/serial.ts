/**
 * Serial transport: every port in the `serial` config section is a
 * SerialLink (serial-link.ts) that finds its port (by path or USB ids),
 * ingests deframed frames, acks them with gateway-signed frame-acks once
 * durable (or final), and reconnects by itself after errors and unplugs.
 * Commands for a device go down the link bound to it (config `device`) or,
 * failing that, the link it was last heard on.
 */
import type { SignFn } from '../../protocols/index.js';
import type { IngestPipeline } from '../ingest/pipeline.js';
import type { Logger } from '../logger.js';
import { type SerialPortConfig, SerialLink, type SerialLinkStats } from './serial-link.js';
import { listSerialPorts, type SerialPortInfo } from './serial-ports.js';

export type { SerialPortConfig } from './serial-link.js';

export interface SerialTransportOptions {
  readonly ports: readonly SerialPortConfig[];
  readonly gatewayId: string;
  readonly sign: SignFn;
  /** First retry after an error or unplug, doubling up to the max. */
  readonly reconnectMinMs?: number;
  readonly reconnectMaxMs?: number;
  readonly maxFrameBytes?: number;
  /** Per port; default 1024. */
  readonly maxInflight?: number;
  /** Per port, bytes; default 64 KiB. */
  readonly maxWriteQueue?: number;
  /** Port enumeration (default: udev through serialport, else sysfs). */
  readonly list?: () => Promise<SerialPortInfo[]>;
}

export interface SerialEvents {
  onDeviceSeen?(device: string, source: string): void;
  onLinkDown?(source: string): void;
}

export interface SerialLinkStatus {
  readonly name: string;
  readonly path: string | undefined;
  readonly state: string;
  readonly devices: string[];
  readonly stats: SerialLinkStats;
  readonly deframer: SerialLink['deframer']['stats'];
}

export class SerialTransport {
  /** Firmware reports from any link (set by the firmware transfer, gateway/firmware/links.ts). */
  onFirmware: ((frame: Uint8Array, link: SerialLink) => void) | undefined;

  private constructor(readonly links: readonly SerialLink[]) {}

  static start(
    opts: SerialTransportOptions,
    ingest: IngestPipeline,
    log: Logger,
    events: SerialEvents = {},
  ): SerialTransport {
    const list = opts.list ?? (() => listSerialPorts());
    let transport: SerialTransport | undefined;
    const links = opts.ports.map(
      (config) =>
        new SerialLink(config, {
          ingest,
          gatewayId: opts.gatewayId,
          sign: opts.sign,
          log,
          list,
          reconnectMinMs: opts.reconnectMinMs ?? 250,
          reconnectMaxMs: opts.reconnectMaxMs ?? 5000,
          maxFrameBytes: opts.maxFrameBytes ?? 4096,
          maxInflight: opts.maxInflight ?? 1024,
          maxWriteQueue: opts.maxWriteQueue ?? 64 * 1024,
          ...(events.onDeviceSeen && { onDeviceSeen: events.onDeviceSeen }),
          ...(events.onLinkDown && { onLinkDown: events.onLinkDown }),
          onFirmware: (frame, link) => transport?.onFirmware?.(frame, link),
        }),
    );
    transport = new SerialTransport(links);
    for (const l of links) l.start();
    log.info({ ports: links.map((l) => l.name) }, `serial transport: ${links.length} port(s)`);
    return transport;
  }

  /** The link a device is reached on: the one bound to it, else the one it was last heard on. */
  linkFor(deviceId: string): SerialLink | undefined {
    const bound = this.links.find((l) => l.config.device === deviceId);
    if (bound) return bound;
    return (
      this.links.find((l) => l.isOpen && l.devices.has(deviceId)) ?? this.links.find((l) => l.devices.has(deviceId))
    );
  }

  /**
   * Sends a downlink frame (a gateway-signed command, say) to a device, framed
   * as COBS(frame ‖ CRC-32C) 0x00. Resolves true once written to the port,
   * false if no open link reaches the device.
   */
  send(deviceId: string, frame: Uint8Array): Promise<boolean> {
    const link = this.linkFor(deviceId);
    return link ? link.send(frame) : Promise.resolve(false);
  }

  status(): SerialLinkStatus[] {
    return this.links.map((l) => ({
      name: l.name,
      path: l.path,
      state: l.status,
      devices: [...l.devices],
      stats: { ...l.stats },
      deframer: { ...l.deframer.stats },
    }));
  }

  async close(): Promise<void> {
    await Promise.all(this.links.map((l) => l.close()));
  }
}
