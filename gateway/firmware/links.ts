/**
 * Firmware links (gateway/firmware/README.md, "Links"): how the transfer reaches a device on
 * each transport. The transfer itself (transfer.ts) is the same everywhere; a link carries its
 * offers and chunks to a device and the device's reports back, and says how big a chunk and
 * how many bytes in flight it carries without overrunning:
 *
 * - MQTT: `fw-down` / `fw-up` topics through the embedded broker (it queues per client).
 * - serial: frames of the port's COBS stream (protocols/firmware-transfer.ts tells them from
 *   the other frames); a chunk at most the frame limit, in flight at most half the port's
 *   write queue (past the queue, writes are dropped).
 * - BLE: the same frames on the Nordic UART Service, written to RX in ATT payloads of MTU − 3;
 *   a chunk spans at most 16 payloads (`bleChunkBytes`), in flight at most
 *   BLE_INFLIGHT_BYTES framed (protocols/firmware-transfer.ts).
 */
import { topics } from '../../protocols/index.js';
import {
  BLE_INFLIGHT_BYTES,
  bleChunkBytes,
  CHUNK_OVERHEAD,
  MAX_CHUNK_BYTES,
} from '../../protocols/firmware-transfer.js';
import type { BleTransport } from '../transports/ble.js';
import type { SerialTransport } from '../transports/serial.js';

export type FirmwareTransport = 'mqtt' | 'serial' | 'ble';

/** Where a report came from. */
export interface ReportSource {
  /** The device the link names (MQTT topic, a serial port bound to a device, a BLE peripheral). */
  readonly claimed?: string | undefined;
  /** The report verified as `device`'s: the link now reaches the device there. */
  readonly accepted?: (device: string) => void;
}

export interface LinkLimits {
  /** Largest chunk (data bytes). */
  readonly maxChunk: number;
  /** Framed bytes of chunks the link may hold in flight toward the device. */
  readonly maxInflightBytes: number;
}

export interface FirmwareLink {
  readonly transport: FirmwareTransport;
  /** Starts passing the devices' signed reports (COSE_Sign1 bytes) to `onReport`. */
  start(onReport: (report: Uint8Array, from: ReportSource) => void): Promise<void>;
  /** Sends one offer or chunk; false when the link does not reach the device or cannot take it now. */
  send(device: string, message: Uint8Array): boolean;
  limits(device: string): LinkLimits;
  /**
   * Framed bytes of chunks in flight toward all its devices together (unset: no bound beyond
   * each device's). A device whose window does not fit waits for others' reports (transfer.ts).
   */
  readonly totalInflightBytes?: number;
  /**
   * Runs `fn`, whose sends leave together where the link can (BLE over the simulated radio: a
   * report's window of chunks in one socket write, not one per chunk). Unset: `fn` just runs.
   */
  batch?(fn: () => void): void;
}

/**
 * MQTT's bound across devices: the broker queues each client's chunks in the gateway's memory,
 * so a rollout to a thousand devices at once would hold a thousand windows. 2 MiB is 15 windows
 * of 16 KiB × 8; one device alone always goes (bench/firmware-rollout.ts: 1 MiB and 8 MiB took
 * the same wall time for 1 000 devices, 8 MiB cost ~45 MB more RSS).
 */
const MQTT_TOTAL_INFLIGHT_BYTES = 2 * 1024 * 1024;

/** What the MQTT link needs of the broker. */
export interface FirmwareBroker {
  /** Publishes QoS 1 as the gateway; `done` once the broker routed it (a callback: no promise per chunk). */
  publish(topic: string, payload: Uint8Array, done: (err?: Error | null) => void): void;
  /** Calls `fn` with each message published on a topic matching `filter`. */
  subscribe(filter: string, fn: (topic: string, payload: Uint8Array) => void): Promise<void>;
}

export function mqttFirmwareLink(broker: FirmwareBroker, onError: (device: string, err: Error) => void): FirmwareLink {
  // Per device, made once: its fw-down topic and the publish callback (not a string and a closure per chunk).
  const routes = new Map<string, { topic: string; done: (err?: Error | null) => void }>();
  return {
    transport: 'mqtt',
    start: (onReport) =>
      broker.subscribe(topics.fwUpWildcard, (topic, payload) => onReport(payload, { claimed: topic.split('/')[3] })),
    send(device, message) {
      let r = routes.get(device);
      if (!r) {
        r = { topic: topics.fwDown(device), done: (err) => err && onError(device, err) };
        routes.set(device, r);
      }
      broker.publish(r.topic, message, r.done);
      return true;
    },
    limits: () => ({ maxChunk: MAX_CHUNK_BYTES, maxInflightBytes: Number.POSITIVE_INFINITY }),
    totalInflightBytes: MQTT_TOTAL_INFLIGHT_BYTES,
  };
}

export function serialFirmwareLink(serial: SerialTransport): FirmwareLink {
  return {
    transport: 'serial',
    async start(onReport) {
      serial.onFirmware = (frame, link) =>
        onReport(frame, { claimed: link.config.device, accepted: (device) => link.heard(device) });
    },
    send(device, message) {
      const link = serial.linkFor(device);
      return link?.isOpen === true && link.queue(message);
    },
    limits(device) {
      const link = serial.linkFor(device);
      return {
        // A chunk message is one frame: at most the frame limit (the device's, like the gateway's).
        maxChunk: Math.min(MAX_CHUNK_BYTES, (link?.deframer.maxFrameBytes ?? 4096) - CHUNK_OVERHEAD),
        maxInflightBytes: (link?.writeQueueLimit ?? 64 * 1024) / 2,
      };
    },
  };
}

export function bleFirmwareLink(ble: BleTransport): FirmwareLink {
  return {
    transport: 'ble',
    async start(onReport) {
      ble.onFirmware = (frame, link) => onReport(frame, { claimed: link.deviceId });
    },
    send(device, message) {
      const link = ble.links.get(device);
      return link?.state === 'subscribed' && link.send(message);
    },
    limits(device) {
      const mtu = ble.links.get(device)?.mtu ?? 23;
      return { maxChunk: bleChunkBytes(mtu), maxInflightBytes: BLE_INFLIGHT_BYTES };
    },
    batch: (fn) => ble.batch(fn),
  };
}
