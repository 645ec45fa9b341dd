/**
 * `export` and `alerts` in the gateway config: sinks (PostgreSQL, a cloud MQTT broker, an
 * HTTP webhook) and who gets alerts. Outbound connections beyond loopback must be encrypted
 * (TLS) unless a sink says `insecure: true`.
 */
import { z } from 'zod';
import { ID_PATTERN } from '../../protocols/index.js';
import { isLoopbackUrl, tlsSchema } from '../outbound.js';

const name = z.string().regex(ID_PATTERN, { message: `must match ${ID_PATTERN.source}` });

/** A postgres URL naming a unix socket directory (`?host=/run/postgresql`): local, no TLS needed. */
const unixSocket = (url: string): boolean => {
  // Not WHATWG-parseable (`postgres://user@/db` has credentials and no host): read the query by hand.
  const m = /[?&]host=([^&#]*)/.exec(url);
  return m !== null && decodeURIComponent(m[1]!).startsWith('/');
};

const common = {
  name,
  /** The sink as a principal of the policy file (name or did:key): it receives only policies it may read. Needed with `policy.file`. */
  principal: z.string().min(1).max(200).optional(),
  /** Frames per batch (one transaction / one round of PUBACKs). */
  batchFrames: z.number().int().min(1).max(10_000).default(500),
  /** Catch-up rate limit; 0 = unlimited. */
  maxFramesPerSecond: z.number().int().min(0).max(1_000_000).default(5000),
  /** A backlog is sent oldest first, or newest first (live data first, the backlog behind it). */
  resendPriority: z.enum(['oldest', 'newest']).default('oldest'),
  /** A sink whose backlog is older than this raises a `sink-lagging` alert. */
  lagAlertSeconds: z
    .number()
    .int()
    .min(1)
    .max(30 * 86_400)
    .default(300),
  /** Allow an unencrypted connection to a host beyond loopback. */
  insecure: z.boolean().default(false),
  /**
   * A sink shared by siblings: the `gateway.id` that exports it. Its progress is logged as
   * signed cursor blocks (synced); every other gateway with the same sink stands by and takes
   * it over when the owner's cursor stops moving while blocks wait. Absent: this gateway's
   * sink alone, its cursor kept in the local store only.
   */
  owner: name.optional(),
  /** A standby takes over once the owner's cursor has left blocks unexported this long without a newer cursor block. */
  takeoverAfterSeconds: z.number().int().min(5).max(86_400).default(60),
  /** A shared sink's cursor is logged at most this often while it moves (and always on a clean stop). */
  cursorBlockSeconds: z.number().int().min(1).max(3600).default(10),
};

export const postgresSinkSchema = z
  .object({
    type: z.literal('postgres'),
    ...common,
    /**
     * Frames per transaction. More than MQTT's round of PUBACKs: each transaction costs the
     * server its own work (BEGIN/COMMIT, the rollup delta table, one rollup row per series and
     * hour the batch touches), so a catch-up in batches of 2 000 costs it about half the CPU of
     * batches of 500 (bench/README.md, "Export ÷ COPY: the frames decoded by the fast paths").
     */
    batchFrames: z.number().int().min(1).max(10_000).default(2000),
    /** postgres://user@host:port/db, or postgres://user@/db?host=/run/postgresql for a unix socket. */
    url: z.string().regex(/^postgres(ql)?:\/\//, { message: 'must be a postgres:// URL' }),
    /** File holding the password (not in the config). */
    passwordFile: z.string().min(1).optional(),
    /** TLS to the server (required beyond loopback and unix sockets unless insecure). */
    tls: tlsSchema.optional(),
    /** PostgreSQL schema holding the tables. */
    schema: z
      .string()
      .regex(/^[a-z_][a-z0-9_]{0,62}$/, { message: 'must be a lower-case SQL identifier' })
      .default('outpost'),
  })
  .strict();

export const mqttSinkSchema = z
  .object({
    type: z.literal('mqtt'),
    ...common,
    /** mqtts://host:8883 (mqtt:// only to loopback unless insecure). */
    url: z.string().regex(/^mqtts?:\/\/[^\s/]+$/, { message: 'must be mqtts://host:port or mqtt://host:port' }),
    username: z.string().min(1).max(256).optional(),
    passwordFile: z.string().min(1).optional(),
    tls: tlsSchema.optional(),
    clientId: z.string().min(1).max(128).optional(),
    /** Topic per frame: {gateway} (heard by), {device}, {policy}, {boot}, {seq}. */
    topic: z.string().min(1).max(512).default('outpost/v1/export/{gateway}/{device}'),
    /** `signed`: the COSE_Sign1 bytes as the device signed them; `json`: decoded records with the frame in hex. */
    payload: z.enum(['signed', 'json']).default('json'),
    /** Alerts to this sink go to this topic. */
    alertTopic: z.string().min(1).max(512).default('outpost/v1/alerts/{gateway}'),
  })
  .strict();

export const httpSinkSchema = z
  .object({
    type: z.literal('http'),
    name,
    /** Alerts are POSTed here as JSON (http:// only to loopback unless insecure). */
    url: z.string().regex(/^https?:\/\/\S+$/, { message: 'must be an http(s):// URL' }),
    /** File holding a bearer token sent as Authorization. */
    tokenFile: z.string().min(1).optional(),
    tls: tlsSchema.optional(),
    insecure: z.boolean().default(false),
    timeoutMs: z.number().int().min(100).max(120_000).default(10_000),
  })
  .strict();

export const sinkSchema = z
  .discriminatedUnion('type', [postgresSinkSchema, mqttSinkSchema, httpSinkSchema])
  .superRefine((s, ctx) => {
    if (s.insecure) return;
    const plain =
      (s.type === 'mqtt' && s.url.startsWith('mqtt://')) ||
      (s.type === 'http' && s.url.startsWith('http://')) ||
      (s.type === 'postgres' && s.tls === undefined && !unixSocket(s.url));
    if (plain && !isLoopbackUrl(s.url))
      ctx.addIssue({
        code: 'custom',
        path: ['url'],
        message: 'an unencrypted connection beyond loopback: use TLS (mqtts://, https://, tls: {…}) or insecure: true',
      });
  });

export const exportSchema = z
  .object({
    sinks: z
      .array(sinkSchema)
      .max(32)
      .default([])
      .refine((a) => new Set(a.map((s) => s.name)).size === a.length, { message: 'sink names must be unique' }),
    /** Local rollups (1-minute and 1-hour min/mean/max/count per device and SenML name). */
    rollups: z
      .object({
        enabled: z.boolean().default(true),
        /** How long each step is kept locally: durations such as 7d, 12h, or seconds. */
        retainMinute: z.union([z.string().regex(/^\d+[smhdw]$/), z.number().int().positive()]).default('30d'),
        retainHour: z.union([z.string().regex(/^\d+[smhdw]$/), z.number().int().positive()]).default('730d'),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .prefault({});

export const alertsSchema = z
  .object({
    /** Sinks (http or mqtt) that receive alerts and their resolutions. */
    notify: z.array(name).max(16).default([]),
    /** At most one message per alert key within this long (a flapping condition is held back). */
    minIntervalSeconds: z.number().int().min(0).max(86_400).default(60),
    /** Most messages per notifier per minute, over all alerts. */
    maxPerMinute: z.number().int().min(1).max(10_000).default(30),
    /** Health checks: free bytes below this (default: twice ingest.minFreeBytes) raise `disk-low`. */
    diskLowBytes: z.number().int().min(0).optional(),
    /** A device silent for this long raises `device-offline` (0 = off). */
    deviceOfflineSeconds: z
      .number()
      .int()
      .min(0)
      .max(30 * 86_400)
      .default(0),
    /** A sibling not reached for this long raises `sibling-unreachable`. */
    siblingUnreachableSeconds: z
      .number()
      .int()
      .min(1)
      .max(30 * 86_400)
      .default(120),
    /** How often health is checked. */
    checkSeconds: z.number().int().min(1).max(3600).default(15),
  })
  .strict()
  .prefault({});

export type SinkConfig = z.infer<typeof sinkSchema>;
export type PostgresSinkConfig = z.infer<typeof postgresSinkSchema>;
export type MqttSinkConfig = z.infer<typeof mqttSinkSchema>;
export type HttpSinkConfig = z.infer<typeof httpSinkSchema>;
export type AlertsConfig = z.infer<typeof alertsSchema>;

/** Durations as in log.retention (30d, 12h, 90m, 3600s, 2w) or seconds, to ms. */
export function durationMs(d: string | number): number {
  if (typeof d === 'number') return d * 1000;
  const n = Number(d.slice(0, -1));
  const unit = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 }[d.slice(-1) as 's' | 'm' | 'h' | 'd' | 'w'];
  return n * unit * 1000;
}
