/**
 * `sync` in the gateway config: siblings, where to dial them, and the MQTT brokers on which
 * this gateway answers. A broker is a URL (the sibling login: a sibling's embedded broker
 * checks it) or an object with the broker's own credentials and TLS (a site Mosquitto with a
 * `password_file`), the same fields an export sink takes (gateway/outbound.ts).
 */
import { z } from 'zod';
import { ID_PATTERN, parsePublicKey } from '../../protocols/index.js';
import { isLoopbackUrl, type MqttLogin, tlsSchema } from '../outbound.js';

const id = z.string().regex(ID_PATTERN, { message: `must match ${ID_PATTERN.source}` });

/** A sibling's Ed25519 key (its did:key, as `gateway identity` prints it, or 64 hex digits), checked here so a typo fails `config check`. */
const peerKey = z.string().superRefine((text, ctx) => {
  const key = parsePublicKey(text);
  if (!key.ok) ctx.addIssue({ code: 'custom', message: `${key.error.message} (${key.error.code})` });
});

const brokerUrl = z
  .string()
  .regex(/^mqtts?:\/\/[^\s/:]+:\d{1,5}$/, { message: 'must be mqtt://host:port or mqtts://host:port' });

const brokerObject = z
  .object({
    url: brokerUrl,
    /** The broker's own login (e.g. a Mosquitto password_file user); without it, the sibling login. */
    username: z.string().min(1).max(256).optional(),
    /** File holding the broker password (not in the config). */
    passwordFile: z.string().min(1).optional(),
    /** TLS of an mqtts:// URL: `ca` the server's certificate must chain to (default: the system's CAs). */
    tls: tlsSchema.optional(),
    /** Allow `username` over plain mqtt:// to a host beyond loopback (the password crosses the network in clear). */
    insecure: z.boolean().default(false),
  })
  .strict()
  .superRefine((b, ctx) => {
    if (b.passwordFile !== undefined && b.username === undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['passwordFile'],
        message: 'needs a username (MQTT sends no password alone)',
      });
    if (b.tls !== undefined && !b.url.startsWith('mqtts:'))
      ctx.addIssue({ code: 'custom', path: ['tls'], message: 'is for mqtts:// URLs: this one is plain mqtt://' });
    if (b.username !== undefined && b.url.startsWith('mqtt:') && !b.insecure && !isLoopbackUrl(b.url))
      ctx.addIssue({
        code: 'custom',
        path: ['url'],
        message:
          'would send the broker password in clear beyond loopback: use mqtts:// (with tls: { ca: FILE } for a private CA) or insecure: true',
      });
  });

const brokerEntry = z.union([brokerUrl, brokerObject]);
type BrokerEntry = z.infer<typeof brokerEntry>;

/** A broker as this gateway logs in there: the URL, and the broker's own credentials when configured. */
export interface SyncBroker extends MqttLogin {
  readonly passwordFile?: string;
}

export const brokerOf = (b: BrokerEntry): SyncBroker => (typeof b === 'string' ? { url: b } : b);

/** One broker address however it is written (scheme and host case), to match a peer's url to a broker entry. */
export const brokerKey = (url: string): string => {
  const u = new URL(url);
  return `${u.protocol}//${u.host}`.toLowerCase();
};

export const syncSchema = z
  .object({
    enabled: z.boolean().default(false),
    host: z.string().min(1).default('0.0.0.0'),
    port: z.number().int().min(0).max(65535).default(7878),
    /**
     * Direct TCP links are encrypted and mutually authenticated with Noise XX (keys derived from the
     * gateway identities, pinned to the peers' keys); both sides must agree. false: plain TCP.
     */
    encrypted: z.boolean().default(true),
    /**
     * Offer link compression (deflate over the session, protocols/link-deflate.ts): used when both
     * sides offer it. false: messages cross as they are (a link to inspect with a capture, say).
     */
    compress: z.boolean().default(true),
    /** How often each sibling is dialled ("are we equal?" first, then a sync if not). */
    intervalSeconds: z.number().positive().max(3600).default(5),
    /** Sibling gateways: their key (only these may connect) and, to dial them, host and port. */
    peers: z
      .array(
        z
          .object({
            id,
            publicKey: peerKey,
            host: z.string().min(1).optional(),
            port: z.number().int().min(1).max(65535).optional(),
            /**
             * Where to dial it instead of host/port: `tcp://host:port` (its sync port) or `mqtt(s)://broker:port`
             * (its embedded broker, or a broker it answers on; credentials and TLS from the `brokers` entry with that url).
             */
            url: z
              .string()
              .regex(/^(tcp|mqtts?):\/\/[^\s/:]+:\d{1,5}$/, {
                message: 'must be tcp://host:port, mqtt://host:port or mqtts://host:port',
              })
              .optional(),
            /** Its site (policy reach `site`). */
            site: id.optional(),
            /** `gateway` (a sibling of the fleet) or `cloud` (a cloud peer: only policies with reach `cloud`). */
            role: z.enum(['gateway', 'cloud']).default('gateway'),
          })
          .strict()
          .refine((p) => p.url === undefined || (p.host === undefined && p.port === undefined), {
            message: 'give url or host/port, not both',
          }),
      )
      .default([]),
    /**
     * MQTT brokers on which this gateway answers siblings' sync (its embedded broker always does when
     * mqtt is enabled): `mqtt(s)://host:port`, or `{ url, username, passwordFile, tls: { ca }, insecure }`
     * for a broker with its own logins. A peer dialled at the same url logs in the same way.
     */
    brokers: z
      .array(brokerEntry)
      .default([])
      .superRefine((bs, ctx) => {
        const seen = new Set<string>();
        bs.forEach((b, i) => {
          const k = brokerKey(brokerOf(b).url);
          if (seen.has(k)) ctx.addIssue({ code: 'custom', path: [i], message: `${k} is listed twice` });
          seen.add(k);
        });
      }),
  })
  .strict()
  .prefault({});
