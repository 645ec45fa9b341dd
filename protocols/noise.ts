/**
 * Noise_XX_25519_ChaChaPoly_SHA256 (The Noise Protocol Framework, revision 34),
 * the handshake and transport ciphers only; framing and I/O are the caller's.
 *
 *   XX:  -> e
 *        <- e, ee, s, es
 *        -> s, se
 *
 * Each side proves its static X25519 key; the caller pins the remote static key
 * (the sibling gateways derive theirs from their Ed25519 identities). Checked
 * against the cacophony test vectors (test/vectors/noise-xx-cacophony.json).
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  randomBytes,
} from 'node:crypto';
import { fail, ok, ProtocolUsageError, type Result } from './result.js';

const NOISE_PROTOCOL_NAME = 'Noise_XX_25519_ChaChaPoly_SHA256';
/** §3: a Noise message is at most 65535 bytes. */
const NOISE_MAX_MESSAGE = 65535;
const DHLEN = 32;
const HASHLEN = 32;
const TAGLEN = 16;
/** The largest plaintext that fits one transport message. */
export const NOISE_MAX_PLAINTEXT = NOISE_MAX_MESSAGE - TAGLEN;
const EMPTY = new Uint8Array(0);
const MAX_NONCE = 2n ** 64n - 1n; // §5.1: n = 2^64-1 is reserved

const sha256 = (...parts: Uint8Array[]): Uint8Array => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
};
const hmac = (key: Uint8Array, ...parts: Uint8Array[]): Uint8Array => {
  const h = createHmac('sha256', key);
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
};

/** §4.3 HKDF(chaining_key, input_key_material, 2): two HASHLEN outputs. */
function hkdf2(ck: Uint8Array, ikm: Uint8Array): [Uint8Array, Uint8Array] {
  const temp = hmac(ck, ikm);
  const out1 = hmac(temp, Uint8Array.of(1));
  return [out1, hmac(temp, out1, Uint8Array.of(2))];
}

// RFC 8410 §7 / §4 DER prefixes of a raw X25519 private and public key (node:crypto takes keys as DER).
const PKCS8_X25519 = Buffer.from('302e020100300506032b656e04220420', 'hex');
const SPKI_X25519 = Buffer.from('302a300506032b656e032100', 'hex');
const privateKey = (secret: Uint8Array) =>
  createPrivateKey({ key: Buffer.concat([PKCS8_X25519, secret]), format: 'der', type: 'pkcs8' });

/**
 * §4.1 DH(key_pair, public_key) with X25519 (RFC 7748 §5, OpenSSL through node:crypto, which refuses
 * an all-zero result, i.e. a small-order remote key).
 */
function dh(secret: Uint8Array, pub: Uint8Array): Result<Uint8Array> {
  try {
    const publicKey = createPublicKey({ key: Buffer.concat([SPKI_X25519, pub]), format: 'der', type: 'spki' });
    return ok(new Uint8Array(diffieHellman({ privateKey: privateKey(secret), publicKey })));
  } catch {
    return fail('noise/bad-key', 'remote key is not a usable X25519 public key');
  }
}

export const x25519PublicOf = (secret: Uint8Array): Uint8Array =>
  new Uint8Array(
    createPublicKey(privateKey(secret)).export({ format: 'der', type: 'spki' }).subarray(SPKI_X25519.length),
  );

/** §5.1 CipherState with §4.2 ChaChaPoly: 96-bit nonce = 32 zero bits ‖ n as 64-bit little-endian. */
export class CipherState {
  private n = 0n;
  constructor(private k: Uint8Array | undefined = undefined) {}

  get hasKey(): boolean {
    return this.k !== undefined;
  }

  private nonce(): Buffer {
    if (this.n >= MAX_NONCE) throw new ProtocolUsageError('noise/nonce-exhausted', 'rekey or start a new session');
    const iv = Buffer.alloc(12);
    iv.writeBigUInt64LE(this.n, 4);
    this.n++;
    return iv;
  }

  encryptWithAd(ad: Uint8Array, plaintext: Uint8Array): Uint8Array {
    if (!this.k) return plaintext;
    if (plaintext.length > NOISE_MAX_PLAINTEXT)
      throw new ProtocolUsageError('noise/too-large', `plaintext over ${NOISE_MAX_PLAINTEXT} bytes`);
    const c = createCipheriv('chacha20-poly1305', this.k, this.nonce(), { authTagLength: TAGLEN });
    c.setAAD(ad, { plaintextLength: plaintext.length });
    const out = Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()]);
    return new Uint8Array(out.buffer, out.byteOffset, out.length);
  }

  /** §5.1: on failure n is not incremented (so a forged message does not desynchronise the session). */
  decryptWithAd(ad: Uint8Array, ciphertext: Uint8Array): Result<Uint8Array> {
    if (!this.k) return ok(ciphertext);
    if (ciphertext.length < TAGLEN) return fail('noise/short', 'ciphertext shorter than its tag');
    const n = this.n;
    const d = createDecipheriv('chacha20-poly1305', this.k, this.nonce(), { authTagLength: TAGLEN });
    d.setAAD(ad, { plaintextLength: ciphertext.length - TAGLEN });
    d.setAuthTag(ciphertext.subarray(ciphertext.length - TAGLEN));
    try {
      const out = Buffer.concat([d.update(ciphertext.subarray(0, ciphertext.length - TAGLEN)), d.final()]);
      return ok(new Uint8Array(out.buffer, out.byteOffset, out.length));
    } catch {
      this.n = n;
      return fail('noise/bad-tag', 'message does not authenticate');
    }
  }
}

/** §5.2 SymmetricState. */
class SymmetricState {
  ck: Uint8Array;
  h: Uint8Array;
  cs = new CipherState();

  constructor(protocolName: string) {
    const name = new TextEncoder().encode(protocolName);
    this.h = name.length <= HASHLEN ? Uint8Array.from({ length: HASHLEN }, (_, i) => name[i] ?? 0) : sha256(name);
    this.ck = this.h;
  }
  mixKey(ikm: Uint8Array): void {
    const [ck, k] = hkdf2(this.ck, ikm);
    this.ck = ck;
    this.cs = new CipherState(k);
  }
  mixHash(data: Uint8Array): void {
    this.h = sha256(this.h, data);
  }
  encryptAndHash(plaintext: Uint8Array): Uint8Array {
    const c = this.cs.encryptWithAd(this.h, plaintext);
    this.mixHash(c);
    return c;
  }
  decryptAndHash(ciphertext: Uint8Array): Result<Uint8Array> {
    const p = this.cs.decryptWithAd(this.h, ciphertext);
    if (p.ok) this.mixHash(ciphertext);
    return p;
  }
  split(): [CipherState, CipherState] {
    const [k1, k2] = hkdf2(this.ck, EMPTY);
    return [new CipherState(k1), new CipherState(k2)];
  }
}

export interface NoiseOptions {
  readonly initiator: boolean;
  /** This side's static X25519 secret. */
  readonly staticSecret: Uint8Array;
  /** §6: bytes both sides must agree on (bound into the handshake hash). */
  readonly prologue?: Uint8Array;
  /** The ephemeral secret (test vectors only; default random). */
  readonly ephemeralSecret?: Uint8Array;
}

export interface NoiseSession {
  readonly send: CipherState;
  readonly receive: CipherState;
  /** The remote side's static X25519 key (to pin). */
  readonly remoteStatic: Uint8Array;
  /** §11.2 channel binding. */
  readonly handshakeHash: Uint8Array;
}

/** §5.3 HandshakeState for XX; messages in order: initiator writes 0 and 2, reads 1; the responder the opposite. */
export class NoiseXX {
  private readonly ss = new SymmetricState(NOISE_PROTOCOL_NAME);
  private readonly s: Uint8Array;
  private readonly e: Uint8Array;
  private re: Uint8Array | undefined;
  private rs: Uint8Array | undefined;
  private step = 0;
  private session_: NoiseSession | undefined;

  constructor(private readonly opts: NoiseOptions) {
    this.s = opts.staticSecret;
    this.e = opts.ephemeralSecret ?? new Uint8Array(randomBytes(DHLEN));
    this.ss.mixHash(opts.prologue ?? EMPTY);
  }

  /** Whose turn: true when this side writes the next handshake message. */
  get myTurn(): boolean {
    return this.step < 3 && (this.step % 2 === 0) === this.opts.initiator;
  }
  /** The transport ciphers and the remote static key, once the three messages are done. */
  get session(): NoiseSession | undefined {
    return this.session_;
  }
  /** The remote static key as soon as it is known (after message 2 for the initiator). */
  get remoteStatic(): Uint8Array | undefined {
    return this.rs;
  }

  private mixDh(secret: Uint8Array, pub: Uint8Array | undefined): Result<true> {
    const r = dh(secret, pub!);
    if (!r.ok) return r;
    this.ss.mixKey(r.value);
    return ok(true);
  }

  writeMessage(payload: Uint8Array = EMPTY): Uint8Array {
    if (!this.myTurn) throw new ProtocolUsageError('noise/out-of-turn', 'not this side’s turn to write');
    const parts: Uint8Array[] = [];
    const writeE = (): void => {
      const pub = x25519PublicOf(this.e);
      parts.push(pub);
      this.ss.mixHash(pub);
    };
    const writeS = (): void => void parts.push(this.ss.encryptAndHash(x25519PublicOf(this.s)));
    const must = (r: Result<true>): void => {
      if (!r.ok) throw new ProtocolUsageError(r.error.code, r.error.message); // keys were checked when read
    };
    if (this.step === 0) writeE();
    else if (this.step === 1) {
      writeE();
      must(this.mixDh(this.e, this.re)); // ee
      writeS();
      must(this.mixDh(this.s, this.re)); // es (responder: DH(s, re))
    } else {
      writeS();
      must(this.mixDh(this.s, this.re)); // se (initiator: DH(s, re))
    }
    parts.push(this.ss.encryptAndHash(payload));
    this.advance();
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of parts) {
      out.set(p, o);
      o += p.length;
    }
    if (out.length > NOISE_MAX_MESSAGE) throw new ProtocolUsageError('noise/too-large', 'handshake payload too large');
    return out;
  }

  /** Reads the peer's next handshake message; returns its payload. Any failure ends the handshake. */
  readMessage(message: Uint8Array): Result<Uint8Array> {
    if (this.myTurn || this.step >= 3) return fail('noise/out-of-turn', 'no handshake message expected');
    if (message.length > NOISE_MAX_MESSAGE) return fail('noise/too-large', 'message over 65535 bytes');
    let off = 0;
    const take = (n: number): Uint8Array | undefined => {
      if (message.length - off < n) return undefined;
      off += n;
      return message.subarray(off - n, off);
    };
    const readE = (): Result<true> => {
      const re = take(DHLEN);
      if (!re) return fail('noise/short', 'message too short for an ephemeral key');
      this.re = re.slice();
      this.ss.mixHash(re);
      return ok(true);
    };
    const readS = (): Result<true> => {
      const c = take(DHLEN + (this.ss.cs.hasKey ? TAGLEN : 0));
      if (!c) return fail('noise/short', 'message too short for a static key');
      const rs = this.ss.decryptAndHash(c);
      if (!rs.ok) return rs;
      this.rs = rs.value.slice();
      return ok(true);
    };
    const steps: (() => Result<true>)[] =
      this.step === 0
        ? [readE]
        : this.step === 1
          ? [readE, () => this.mixDh(this.e, this.re), readS, () => this.mixDh(this.e, this.rs)] // ee, s, es
          : [readS, () => this.mixDh(this.e, this.rs)]; // s, se (responder: DH(e, rs))
    for (const s of steps) {
      const r = s();
      if (!r.ok) return r;
    }
    const payload = this.ss.decryptAndHash(message.subarray(off));
    if (!payload.ok) return payload;
    this.advance();
    return ok(payload.value.slice());
  }

  private advance(): void {
    this.step++;
    if (this.step < 3) return;
    const [c1, c2] = this.ss.split();
    this.session_ = {
      send: this.opts.initiator ? c1 : c2,
      receive: this.opts.initiator ? c2 : c1,
      remoteStatic: this.rs!,
      handshakeHash: this.ss.h,
    };
  }
}
