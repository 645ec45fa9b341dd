/**
 * Who an MQTT client is at the embedded broker, and what it may do.
 *
 * At CONNECT (authenticate) a client becomes one of:
 * - a device: username = an enrolled device id, password = a connect token
 *   (protocols/connect-token.ts) signed by that device's key, for this
 *   gateway, within `tokenWindowMs` of our clock and newer than the last token
 *   accepted for it (a captured token cannot be replayed). It may publish only
 *   to its own `up` and `fw-up` topics and subscribe only to its own `cmd` and `fw-down`;
 * - a principal of the policy file: username = its name or did:key, password =
 *   a connect token signed by its key. It publishes nothing and receives frames
 *   only of policies it may read (filtered per message at forward);
 * - a sibling gateway on the sync topics (`outpost-sync:{key}`, as before);
 * - anonymous: only on a listener that allows it (loopback by default), with
 *   the behaviour from before authentication existed.
 * A client id that names an enrolled device is taken only by that device, so
 * nobody else can knock it off (MQTT session takeover).
 *
 * CONNACK return codes (MQTT 3.1.1 §3.2.2.3): 2 identifier rejected (takeover),
 * 4 bad user name or password (bad, stale or replayed token), 5 not authorized
 * (anonymous where not allowed, unknown or revoked device, unknown principal).
 */
import {
  decodeConnectToken,
  parsePublicKey,
  parseTopic,
  SYNC_BROKER_USER_PREFIX,
  SYNC_TOPIC_ROOT,
  syncBrokerAuthInput,
  TOPIC_ROOT,
  toHex,
  topics,
} from '../../protocols/index.js';
import { verifyEd25519 } from '../crypto/ed25519.js';

export type BrokerIdentity =
  | { readonly kind: 'device'; readonly id: string }
  | { readonly kind: 'principal'; readonly did: string; readonly name: string }
  | { readonly kind: 'sibling' }
  | { readonly kind: 'anonymous' };

export type ConnackCode = 2 | 4 | 5;

export type AuthResult =
  | { readonly ok: true; readonly identity: BrokerIdentity }
  | { readonly ok: false; readonly code: ConnackCode; readonly reason: string };

export interface BrokerAccessOptions {
  readonly gatewayId: string;
  /** A token's time may be this far from our clock, either way. */
  readonly tokenWindowMs: number;
  /** An enrolled device: its key, or revoked; undefined when not enrolled. */
  readonly device: (id: string) => { readonly publicKey: Uint8Array; readonly revoked: boolean } | undefined;
  /** A principal of the policy file by name or did:key. */
  readonly principal?: (
    ref: string,
  ) => { readonly did: string; readonly name: string; readonly publicKey: Uint8Array } | undefined;
  /** May this principal (did) read frames of this policy tag? */
  readonly mayRead?: (did: string, policy: string) => boolean;
  /** Sibling gateway keys allowed on the sync topics. */
  readonly syncPeers?: readonly Uint8Array[];
  readonly now?: () => number;
}

const HA_STATES = `${TOPIC_ROOT}/gw/+/ha/#`;
/** The topic shapes a principal may read: frames and Home Assistant states (filtered by policy), gateway status. */
const PRINCIPAL_READABLE = [`${TOPIC_ROOT}/dev/+/up`, `${TOPIC_ROOT}/gw/+/status`, HA_STATES];

export class BrokerAccess {
  /**
   * Time of the last token accepted per subject: a token must be newer (no replay). Entries
   * older than twice the token window are swept (such a token is refused by the window anyway;
   * twice leaves room for the clock stepping back), so subjects that stopped connecting
   * (removed devices, principals) do not stay for the life of the process.
   */
  private readonly lastToken = new Map<string, number>();
  private sweepTokensAt = 1024;
  private readonly syncKeys: Set<string>;
  private readonly now: () => number;
  /** Extra readable prefixes (the Home Assistant discovery prefix). */
  readonly extraReadable: string[] = [];

  constructor(private readonly opts: BrokerAccessOptions) {
    this.syncKeys = new Set((opts.syncPeers ?? []).map(toHex));
    this.now = opts.now ?? Date.now;
  }

  /**
   * Authenticates a CONNECT. `anonymousOk`: the listener allows clients without credentials.
   * `sessionOf(clientId)`: the identity of a connected client holding that id, for takeover checks.
   */
  authenticate(
    clientId: string,
    username: string | undefined,
    password: Uint8Array | undefined,
    anonymousOk: boolean,
    sessionOf: (clientId: string) => BrokerIdentity | undefined,
  ): AuthResult {
    const r = this.identify(clientId, username, password, anonymousOk);
    if (!r.ok) return r;
    // A client id naming an enrolled device is that device's alone (no takeover).
    const id = r.identity;
    const isThatDevice = id.kind === 'device' && id.id === clientId;
    if (!isThatDevice && this.opts.device(clientId)) {
      const holder = sessionOf(clientId);
      // Without credentials anywhere (anonymous listener), the old behaviour stands unless the device proved itself.
      if (id.kind !== 'anonymous' || holder?.kind === 'device')
        return { ok: false, code: 2, reason: `client id ${clientId} belongs to an enrolled device` };
    }
    return r;
  }

  private identify(
    clientId: string,
    username: string | undefined,
    password: Uint8Array | undefined,
    anonymousOk: boolean,
  ): AuthResult {
    if (username === undefined || username === '') {
      return anonymousOk
        ? { ok: true, identity: { kind: 'anonymous' } }
        : { ok: false, code: 5, reason: 'anonymous clients are not allowed on this listener' };
    }
    if (username.startsWith(SYNC_BROKER_USER_PREFIX)) {
      const key = parsePublicKey(username.slice(SYNC_BROKER_USER_PREFIX.length));
      if (
        key.ok &&
        this.syncKeys.has(toHex(key.value)) &&
        password?.length === 64 &&
        verifyEd25519(key.value, syncBrokerAuthInput(clientId), password)
      )
        return { ok: true, identity: { kind: 'sibling' } };
      return { ok: false, code: 5, reason: 'not a sibling gateway' };
    }
    const device = this.opts.device(username);
    if (device?.revoked) return { ok: false, code: 5, reason: `device ${username} is revoked` };
    const principal = device ? undefined : this.opts.principal?.(username);
    const key = device?.publicKey ?? principal?.publicKey;
    if (!key) return { ok: false, code: 5, reason: `${username} is neither an enrolled device nor a principal` };
    const t = this.checkToken(username, password, key);
    if (t) return { ok: false, code: 4, reason: t };
    return {
      ok: true,
      identity: device
        ? { kind: 'device', id: username }
        : { kind: 'principal', did: principal!.did, name: principal!.name },
    };
  }

  /** Undefined when the token is good (and records it), else why not. */
  private checkToken(subject: string, password: Uint8Array | undefined, key: Uint8Array): string | undefined {
    if (!password) return 'no token';
    const t = decodeConnectToken(password);
    if (!t.ok) return `${t.error.code}: ${t.error.message}`;
    const tok = t.value;
    if (tok.subject !== subject) return 'token is for another subject';
    if (tok.audience !== this.opts.gatewayId) return `token is for gateway ${tok.audience}`;
    const now = this.now();
    if (Math.abs(tok.time - now) > this.opts.tokenWindowMs)
      return `token time is ${Math.round((tok.time - now) / 1000)} s from the gateway clock`;
    if (tok.time <= (this.lastToken.get(subject) ?? -1)) return 'token is not newer than the last one accepted';
    if (!verifyEd25519(key, tok.signed, tok.signature)) return 'token signature does not verify';
    this.lastToken.set(subject, tok.time);
    if (this.lastToken.size >= this.sweepTokensAt) this.sweepTokens(now);
    return undefined;
  }

  /** Subjects whose last token is remembered (tests, status). */
  get tokenSubjects(): number {
    return this.lastToken.size;
  }

  /** Drops tokens past twice the window; the next sweep waits for twice what is left (amortised). */
  private sweepTokens(now: number): void {
    for (const [subject, at] of this.lastToken)
      if (now - at > 2 * this.opts.tokenWindowMs) this.lastToken.delete(subject);
    this.sweepTokensAt = Math.max(1024, this.lastToken.size * 2);
  }

  /** May this client publish on `topic`? (Anonymous and siblings: decided by the broker as before.) */
  mayPublish(id: BrokerIdentity, topic: string): boolean {
    if (id.kind === 'device') return topic === topics.up(id.id) || topic === topics.fwUp(id.id);
    if (id.kind === 'principal') return false;
    return true;
  }

  /** May this client subscribe to `filter`? */
  maySubscribe(id: BrokerIdentity, filter: string): boolean {
    if (id.kind === 'device') return filter === topics.cmd(id.id) || filter === topics.fwDown(id.id);
    if (id.kind === 'principal')
      return [...PRINCIPAL_READABLE, ...this.extraReadable].some((shape) => filtersOverlap(filter, shape));
    return true;
  }

  /** May this client receive this message? `policy`: the frame's policy tag when it carries one. */
  mayReceive(id: BrokerIdentity, topic: string, policy: string | undefined): boolean {
    if (topic.startsWith(SYNC_TOPIC_ROOT)) return id.kind === 'sibling';
    if (id.kind === 'device') return topic === topics.cmd(id.id) || topic === topics.fwDown(id.id);
    if (id.kind !== 'principal') return true;
    const t = parseTopic(topic);
    if (t?.kind === 'cmd' || t?.kind === 'fw-down' || t?.kind === 'fw-up') return false;
    if (policy !== undefined) return this.opts.mayRead?.(id.did, policy) ?? false;
    // Readings (frames, Home Assistant states) without a known policy are nobody's to read.
    if (t?.kind === 'up' || filtersOverlap(topic, HA_STATES)) return false;
    return [...PRINCIPAL_READABLE, ...this.extraReadable].some((shape) => filtersOverlap(topic, shape));
  }
}

/** Whether two MQTT topic filters (or a topic and a filter) can match a common topic (MQTT 3.1.1 §4.7). */
function filtersOverlap(a: string, b: string): boolean {
  const x = a.split('/');
  const y = b.split('/');
  for (let i = 0; ; i++) {
    const p = x[i];
    const q = y[i];
    if (p === '#' || q === '#') return true;
    if (p === undefined || q === undefined) return p === q;
    if (p !== '+' && q !== '+' && p !== q) return false;
  }
}
