/**
 * Gateway configuration: one YAML file, validated by a zod schema that also
 * supplies the defaults. Every error names the key path and what is allowed.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { z } from 'zod';
import { ID_PATTERN } from '../protocols/index.js';
import { explainIssue } from './config-explain.js';
import { alertsSchema, exportSchema } from './export/config.js';
import { maxBytesSchema, minCopiesSchema } from './log/budget-config.js';
import { parseRetention } from './log/retention.js';
import { LOG_FORMATS, LOG_LEVELS } from './logger.js';
import { MEMORY_PROFILES } from './memory-profile.js';
import { DEFAULT_REPLAY_LIMITS } from './ingest/replay-window.js';
import { DEFAULT_MIN_FREE_BYTES } from './store/free-space.js';
import { syncSchema } from './sync/config.js';

const id = z.string().regex(ID_PATTERN, { message: `must match ${ID_PATTERN.source}` });

/** A gateway id derived from the host name, so two Pis on one site differ by default. */
function defaultGatewayId(): string {
  const h = hostname()
    .replace(/[^A-Za-z0-9._-]/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '')
    .slice(0, 60);
  return `gw-${h || 'local'}`.slice(0, 64);
}

const deviceSchema = z
  .object({
    id,
    publicKey: z.string().min(1, 'must be 64 hex digits or a did:key'),
    site: z.string().max(64).optional(),
    model: z.string().max(64).optional(),
    name: z.string().max(128).optional(),
  })
  .strict();

/** USB ids: 4 hex digits ("10c4", "0x10C4"); YAML reads an all-digit id such as 0403 as a number, which is taken digit for digit. */
const usbId = z.union([
  z.string().regex(/^(0x)?[0-9A-Fa-f]{4}$/, { message: 'must be 4 hex digits, e.g. "10c4"' }),
  z.number().int().min(0).max(9999),
]);

const serialPortSchema = z
  .object({
    /** Device node or stable link, e.g. /dev/ttyUSB0 or /dev/serial/by-id/usb-Silicon_Labs_CP2102_0001-if00-port0. */
    path: z.string().min(1).optional(),
    /** Or match among the ports present by USB vendor / product / serial number (any that are given). */
    vendorId: usbId.optional(),
    productId: usbId.optional(),
    serialNumber: z.string().min(1).max(128).optional(),
    baudRate: z.number().int().min(300).max(4_000_000).default(115200),
    /** The device on this port: frames signed by any other device are rejected. */
    device: id.optional(),
    name: z.string().min(1).max(64).optional(),
  })
  .strict()
  .superRefine((p, ctx) => {
    const usb = p.vendorId !== undefined || p.productId !== undefined || p.serialNumber !== undefined;
    if (p.path === undefined && !usb)
      ctx.addIssue({ code: 'custom', message: 'needs a path, or USB ids (vendorId, productId, serialNumber)' });
    if (p.path !== undefined && usb) ctx.addIssue({ code: 'custom', message: 'give a path or USB ids, not both' });
  });

export const configSchema = z
  .object({
    gateway: z
      .object({
        id: id.default(defaultGatewayId),
        dataDir: z.string().min(1).default('./data'),
        /** This gateway's site (policies with reach `site` stay among gateways of one site). */
        site: id.optional(),
        /** Defaults sized for the board (gateway/memory-profile.ts): standard, or small for 512 MB boards. */
        memory: z.enum(MEMORY_PROFILES).default('standard'),
      })
      .strict()
      .prefault({}),
    mqtt: z
      .object({
        enabled: z.boolean().default(true),
        host: z.string().min(1).default('127.0.0.1'),
        port: z.number().int().min(0).max(65535).default(1883),
        /**
         * Clients without credentials: `loopback` (default) accepts them only on a listener bound to a
         * loopback address (127.0.0.0/8, ::1); `false` nowhere; `true` everywhere (not for a real network).
         */
        anonymous: z.union([z.literal('loopback'), z.boolean()]).default('loopback'),
        /** A CONNECT token's time may be this far from the gateway clock (either way). */
        tokenWindowSeconds: z.number().int().min(5).max(86_400).default(300),
        /** The MQTT TLS listener (certificate: `tls`). */
        tls: z
          .object({
            enabled: z.boolean().default(false),
            host: z.string().min(1).default('0.0.0.0'),
            port: z.number().int().min(0).max(65535).default(8883),
          })
          .strict()
          .prefault({}),
        /** Flood resistance (per source address). */
        limits: z
          .object({
            connectionsPerAddress: z.number().int().min(1).max(1_000_000).default(1024),
            /** Connections not yet authenticated. */
            pendingPerAddress: z.number().int().min(1).max(100_000).default(32),
            /** CONNECT attempts per second (bursts up to twice this). */
            connectsPerSecond: z.number().positive().max(100_000).default(200),
            /** Bytes a connection may send before it has authenticated. */
            preAuthBytes: z.number().int().min(512).max(1_048_576).default(4096),
            /** Time a new connection has to send CONNECT (and finish the TLS handshake). */
            connectTimeoutMs: z.number().int().min(100).max(120_000).default(10_000),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    /** The certificate of the MQTT TLS listener and HTTPS API: given PEM files, else one created at first start. */
    tls: z
      .object({
        /** PEM certificate file (with `key`); default: <dataDir>/tls/cert.pem, self-signed, created at first start. */
        cert: z.string().min(1).optional(),
        key: z.string().min(1).optional(),
        /** Extra DNS names and IP addresses for the created certificate's subjectAltName. */
        names: z
          .array(z.string().regex(/^[A-Za-z0-9.:*-]{1,253}$/, { message: 'must be a DNS name or an IP address' }))
          .max(64)
          .default([]),
      })
      .strict()
      .refine((t) => (t.cert === undefined) === (t.key === undefined), { message: 'give cert and key together' })
      .prefault({}),
    ingest: z
      .object({
        verifyWorkers: z.union([z.literal('auto'), z.number().int().min(0).max(64)]).default('auto'),
        /** Boots of a device whose never-stored frames are still accepted (gateway/ingest/replay-window.ts). */
        replayBoots: z.number().int().min(1).max(64).default(DEFAULT_REPLAY_LIMITS.boots),
        /** Separate ranges of stored seqs remembered per boot; past it the lowest range and the gap below it are forgotten. */
        replayRanges: z.number().int().min(1).max(4096).default(DEFAULT_REPLAY_LIMITS.ranges),
        /** No longer used (replayBoots and replayRanges bound the replay memory); still accepted so an older config file loads, with a warning at start. */
        replayWindow: z.number().int().optional(),
        maxFrameBytes: z.number().int().min(64).max(4096).default(4096),
        /** Frames being processed before new ones are refused as overloaded (default 20 000; 2 000 with memory: small). */
        maxInflight: z.number().int().min(1).max(1_000_000).optional(),
        /** Most ms a verified frame waits for others to share its transaction and block (default 8; 0 commits at once). */
        coalesceMs: z.number().int().min(0).max(1000).optional(),
        /** Writes are refused below this many free bytes on the data directory's filesystem (gateway/store/free-space.ts); 0 disables. */
        minFreeBytes: z
          .number()
          .int()
          .min(0)
          .max(2 ** 40)
          .default(DEFAULT_MIN_FREE_BYTES),
      })
      .strict()
      .prefault({}),
    serial: z
      .object({
        ports: z.array(serialPortSchema).max(64).default([]),
        /** First retry after an error or unplug, doubling up to reconnectMaxMs. */
        reconnectMinMs: z.number().int().min(10).max(60_000).default(250),
        reconnectMaxMs: z.number().int().min(10).max(600_000).default(5000),
      })
      .strict()
      .prefault({}),
    ble: z
      .object({
        enabled: z.boolean().default(false),
        /** 'hci' (the adapter, hciN below) or the ws:// URL of a noble websocket radio (firmware-sim's simulated radio). */
        radio: z
          .union([z.literal('hci'), z.string().regex(/^wss?:\/\/[^\s]+$/, { message: "must be 'hci' or a ws:// URL" })])
          .default('hci'),
        /** The adapter number (hci0 = 0). */
        hciDevice: z.number().int().min(0).max(15).optional(),
        /** Connection slots in all (connecting + connected). */
        maxConnections: z.number().int().min(1).max(64).default(10),
        /** Connection attempts at once (most HCI controllers create one LE connection at a time). */
        maxConnecting: z.number().int().min(1).max(16).default(1),
        /** Connect, discovery and subscription must finish within this. */
        connectTimeoutMs: z.number().int().min(100).max(120_000).default(10_000),
        /** After a failure or loss: min · 2^(failures−1) up to max, minus up to `jitter` of it at random. */
        backoffMinMs: z.number().int().min(10).max(600_000).default(1000),
        backoffMaxMs: z.number().int().min(10).max(3_600_000).default(30_000),
        jitter: z.number().min(0).max(1).default(0.5),
        /** With all slots taken and devices waiting, let go of the device connected longest after this long; 0 = never. */
        shareSlotsAfterMs: z.number().int().min(0).max(86_400_000).default(60_000),
        /** Advertisers (not enrolled devices' links) remembered here and in noble; the least recently heard go first. */
        maxAdvertisers: z.number().int().min(10).max(100_000).default(1000),
        /** An advertiser not heard for this long is forgotten (here and in noble). */
        forgetAdvertisersAfterMs: z.number().int().min(1000).max(86_400_000).default(60_000),
        scan: z
          .object({
            /** Only these enrolled devices (default: every enrolled device advertising the Nordic UART Service). */
            devices: z.array(id).max(1000).optional(),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    devices: z.array(deviceSchema).default([]),
    simulate: z
      .object({
        /** Simulated devices started when no device is enrolled or configured; 0 turns it off. */
        devices: z.number().int().min(0).max(100_000).default(20),
        rate: z.number().positive().max(1000).default(1),
      })
      .strict()
      .prefault({}),
    status: z
      .object({
        intervalSeconds: z.number().positive().default(5),
        onlineTimeoutSeconds: z.number().positive().default(30),
      })
      .strict()
      .prefault({}),
    log: z
      .object({
        level: z.enum(LOG_LEVELS).default('info'),
        /** `auto`: one readable line per event on a terminal, JSON lines otherwise; or always `json` / `pretty`. */
        format: z.enum(LOG_FORMATS).default('auto'),
        /**
         * Block-log retention (gateway/log): max age per stream (policy) name or `default`, as
         * 30d, 12h, 90m, 3600s, 2w, forever, or seconds; absent: keep forever. Blocks older than
         * this on this gateway's own streams are pruned on every sibling behind a retention mark.
         */
        retention: z
          .record(
            z.string().min(1).max(64),
            z.union([
              z.string().refine((s) => parseRetention(s) !== undefined, {
                message: 'must be a duration above zero such as 30d, 12h, 90m, 3600s, 2w, 1y, or forever',
              }),
              z.number().positive().describe('seconds'),
            ]),
          )
          .default({}),
        /** Storage budget (gateway/log/README.md, "Storage budget"): `auto` (half the disk), 0 (none), bytes or 500MB. */
        maxBytes: maxBytesSchema,
        /** Blocks go over the budget only once this many siblings hold them. */
        minCopies: minCopiesSchema,
        /**
         * Frames are acked from the journal and authored into a frames block once the block's
         * first frame is this old, ms (gateway/log/README.md, "Journal"); 0 signs a block per
         * commit group (as before the journal). At most a minute: siblings see frames once sealed.
         */
        sealAfterMs: z.number().int().min(0).max(60_000).default(1000),
      })
      .strict()
      .prefault({}),
    api: z
      .object({
        enabled: z.boolean().default(true),
        /** Loopback by default; 0.0.0.0 exposes the dashboard and API to the network. */
        host: z.string().min(1).default('127.0.0.1'),
        port: z.number().int().min(0).max(65535).default(8080),
        /** Serve HTTPS (certificate: `tls`). */
        tls: z.boolean().default(false),
        /** Allow plain HTTP on a host beyond loopback (the admin token would cross the network in clear). */
        allowPlainBeyondLoopback: z.boolean().default(false),
        /** Admin token; without it one is generated into <dataDir>/api-token (mode 0600). */
        token: z
          .string()
          .min(16, 'must be at least 16 characters')
          .max(256)
          .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces')
          .optional(),
      })
      .strict()
      .prefault({}),
    metrics: z
      .object({
        enabled: z.boolean().default(true),
        /** Serve /metrics without the admin token (for a Prometheus on the same host or a trusted network). */
        public: z.boolean().default(false),
      })
      .strict()
      .prefault({}),
    homeAssistant: z
      .object({
        enabled: z.boolean().default(false),
        /** Home Assistant's MQTT discovery prefix. */
        prefix: z
          .string()
          .regex(/^[A-Za-z0-9_-]+(\/[A-Za-z0-9_-]+)*$/, {
            message: 'must be MQTT topic levels of [A-Za-z0-9_-], e.g. homeassistant',
          })
          .default('homeassistant'),
      })
      .strict()
      .prefault({}),
    /** Permission policies (gateway/policy/README.md): a YAML policy file; without one, every sibling may hold everything. */
    policy: z
      .object({
        /** The policy file (relative to the working directory). */
        file: z.string().min(1).optional(),
      })
      .strict()
      .prefault({}),
    /** Local rules (rules/README.md): rule files, YAML or TS/JS modules (defineRule), loaded in order. */
    rules: z
      .object({ files: z.array(z.string().min(1)).default([]) })
      .strict()
      .prefault({}),
    /** Commands to devices (gateway/actuation): lease, retry and reachability timings. */
    actuation: z
      .object({
        /** How long a lease on an actuator lasts; renewed while its holder hears the device. */
        leaseSeconds: z.number().positive().max(86_400).default(30),
        /** After a sibling's lease expires, wait this long more before taking it (default half the lease). */
        leaseGraceSeconds: z.number().min(0).max(86_400).optional(),
        /** Resend an unacked command after this, doubling up to retryMaxMs, until it expires. */
        retryMinMs: z.number().int().min(10).max(60_000).default(250),
        retryMaxMs: z.number().int().min(10).max(600_000).default(4000),
        /** Commands (and leases) only for devices heard within this long. */
        heardWithinSeconds: z.number().positive().max(86_400).default(60),
      })
      .strict()
      .prefault({}),
    /** Block-log sync with sibling gateways over direct TCP or MQTT (gateway/sync, config.ts there). */
    sync: syncSchema,
    /** Durable export to PostgreSQL, a cloud MQTT broker and webhooks; local rollups (gateway/export). */
    export: exportSchema,
    /** Rule alerts and gateway health to notifiers (gateway/export/README.md, "Alerts"). */
    alerts: alertsSchema,
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.log.minCopies > 0 && (!c.sync.enabled || c.log.minCopies > c.sync.peers.length))
      ctx.addIssue({
        code: 'custom',
        path: ['log', 'minCopies'],
        message: `is ${c.log.minCopies} but ${c.sync.enabled ? `sync.peers lists ${c.sync.peers.length} sibling(s)` : 'sync is off'}: no block could ever be pruned for the budget`,
      });
    const sinks = new Map(c.export.sinks.map((s) => [s.name, s.type]));
    c.alerts.notify.forEach((n, i) => {
      if (!sinks.has(n))
        ctx.addIssue({ code: 'custom', path: ['alerts', 'notify', i], message: `no sink "${n}" in export.sinks` });
      else if (sinks.get(n) === 'postgres')
        ctx.addIssue({
          code: 'custom',
          path: ['alerts', 'notify', i],
          message: `"${n}" is a postgres sink: alerts go to http or mqtt sinks`,
        });
    });
    const gateways = new Set([c.gateway.id, ...c.sync.peers.map((p) => p.id)]);
    c.export.sinks.forEach((s, i) => {
      if (s.type !== 'http' && s.owner !== undefined && !gateways.has(s.owner))
        ctx.addIssue({
          code: 'custom',
          path: ['export', 'sinks', i, 'owner'],
          message: `"${s.owner}" is neither gateway.id nor a sync.peers id`,
        });
    });
    if (c.policy.file !== undefined)
      c.export.sinks.forEach((s, i) => {
        if (s.type !== 'http' && s.principal === undefined)
          ctx.addIssue({
            code: 'custom',
            path: ['export', 'sinks', i, 'principal'],
            message: 'with policy.file, every data sink names its principal (what it may read)',
          });
      });
  });

export type GatewayConfig = z.infer<typeof configSchema>;

export class ConfigError extends Error {
  constructor(
    readonly code: 'config/unreadable' | 'config/yaml' | 'config/invalid',
    message: string,
    readonly issues: string[] = [],
  ) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Validates a parsed config object, applying defaults. */
export function validateConfig(raw: unknown, source = 'config'): GatewayConfig {
  const r = configSchema.safeParse(raw ?? {});
  if (r.success) return r.data;
  const schema = configJsonSchema();
  const issues = r.error.issues.map((i) => explainIssue(i, schema));
  throw new ConfigError('config/invalid', `${source} is invalid:\n  ${issues.join('\n  ')}`, issues);
}

/** Reads and validates a YAML config file. */
export function loadConfig(file: string): GatewayConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError('config/unreadable', `cannot read ${file}: ${(e as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text, { maxAliasCount: 100 });
  } catch (e) {
    const msg = e instanceof YAMLParseError ? e.message : String(e);
    throw new ConfigError('config/yaml', `${file} is not valid YAML: ${msg}`);
  }
  return validateConfig(raw, file);
}

/** JSON Schema of the config, generated from the same definition that validates it. */
export const configJsonSchema = (): unknown => z.toJSONSchema(configSchema, { io: 'input' });
