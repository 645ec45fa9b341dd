/**
 * An encrypted, mutually authenticated byte stream over a TCP socket for
 * sibling links: the Noise XX handshake (protocols/noise.ts) with each
 * gateway's static X25519 key derived from its Ed25519 identity (the
 * birational map of RFC 7748 §4.1, as the confidential policies' key wraps
 * use), pinned to the sibling list: a remote static key that is not a known
 * sibling's ends the link before any sync byte. Hypercore's secret-stream is
 * the model.
 *
 * Wire: every Noise message is a 2-byte big-endian length and the message
 * (Noise rev 34 §3 caps messages at 65535 bytes). After the three handshake
 * messages, written bytes are cut into pieces of at most 65519 bytes, each
 * one transport message. The prologue binds the protocol use. No Nagle from
 * the first handshake message on: each is one small write the peer waits for.
 */
import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { NOISE_MAX_PLAINTEXT, NoiseXX, type NoiseSession, toHex } from '../../protocols/index.js';
import { x25519FromEd25519Public } from '../policy/seal.js';

const PROLOGUE = new TextEncoder().encode('outpost/sync-noise/v1');
const EMPTY = new Uint8Array(0);

class NoiseLinkError extends Error {
  constructor(
    readonly code: 'noise/handshake' | 'noise/unknown-peer' | 'noise/closed',
    message: string,
  ) {
    super(message);
    this.name = 'NoiseLinkError';
  }
}

/** Reads 2-byte length-prefixed messages from a socket. */
class MessageReader {
  private buf: Buffer = Buffer.alloc(0);
  /** `onMessage` returns false to stop reading (the rest stays buffered). */
  constructor(private readonly onMessage: (m: Uint8Array) => boolean | undefined) {}
  push(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    while (this.buf.length >= 2) {
      const n = this.buf.readUInt16BE(0);
      if (this.buf.length < 2 + n) return;
      const m = this.buf.subarray(2, 2 + n);
      this.buf = this.buf.subarray(2 + n);
      if (this.onMessage(m) === false) return;
    }
  }
  /** Bytes already read past the last whole message. */
  rest(): Buffer {
    return this.buf;
  }
}

const frame = (m: Uint8Array): Buffer => {
  const out = Buffer.allocUnsafe(2 + m.length);
  out.writeUInt16BE(m.length, 0);
  out.set(m, 2);
  return out;
};

/** Bytes the socket may hold unsent before writes to the stream wait for it to drain. */
const SOCKET_AHEAD = 256 * 1024;

/**
 * The transport phase: a Duplex of plaintext bytes over the socket's transport messages.
 * Writes are sealed as they come and handed to the socket at once (each piece its 2-byte length
 * and its ciphertext, no copy into one buffer; several queued writes in one corked batch), and a
 * write is done as soon as the socket holds less than SOCKET_AHEAD: so the next message is
 * sealed while the previous ones are still on the wire, and the kernel's buffer never runs dry
 * waiting for the cipher.
 */
class NoiseStream extends Duplex {
  private readonly reader: MessageReader;

  constructor(
    private readonly socket: Socket,
    private readonly session: NoiseSession,
    leftover: Buffer,
  ) {
    super({ writableHighWaterMark: SOCKET_AHEAD });
    this.reader = new MessageReader((m) => {
      const p = session.receive.decryptWithAd(EMPTY, m);
      if (!p.ok)
        return void this.destroy(new NoiseLinkError('noise/closed', `transport message refused: ${p.error.code}`));
      if (!this.push(p.value)) socket.pause(); // resumed by _read: the reader is behind
    });
    socket.on('data', (c: Buffer) => this.reader.push(c));
    socket.on('end', () => this.push(null));
    socket.on('close', () => this.destroy());
    socket.on('error', (e) => this.destroy(e));
    if (leftover.length > 0) this.reader.push(leftover);
  }

  override _read(): void {
    this.socket.resume();
  }

  private seal(chunk: Uint8Array): void {
    for (let o = 0; o < chunk.length; o += NOISE_MAX_PLAINTEXT) {
      const c = this.session.send.encryptWithAd(EMPTY, chunk.subarray(o, o + NOISE_MAX_PLAINTEXT));
      const head = Buffer.allocUnsafe(2);
      head.writeUInt16BE(c.length, 0);
      this.socket.write(head);
      this.socket.write(c);
    }
  }

  /** Done at once while the socket is not too far behind, else once it drains (or closes). */
  private whenRoom(cb: (e?: Error | null) => void): void {
    if (this.socket.writableLength < SOCKET_AHEAD) return cb();
    const done = (): void => {
      this.socket.off('drain', done);
      this.socket.off('close', done);
      cb();
    };
    this.socket.on('drain', done);
    this.socket.on('close', done);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this._writev([{ chunk }], cb);
  }

  override _writev(chunks: { chunk: Buffer }[], cb: (e?: Error | null) => void): void {
    // One writev for all: no 2-byte length leaving alone in its own segment.
    this.socket.cork();
    for (const { chunk } of chunks) this.seal(chunk);
    this.socket.uncork();
    this.whenRoom(cb);
  }

  override _final(cb: (e?: Error | null) => void): void {
    this.socket.end(cb);
  }

  override _destroy(err: Error | null, cb: (e: Error | null) => void): void {
    this.socket.destroy();
    cb(err);
  }
}

export interface NoiseLinkOptions {
  readonly initiator: boolean;
  /** This gateway's X25519 secret (GatewayIdentity.x25519Secret). */
  readonly staticSecret: Uint8Array;
  /** Ed25519 keys of the siblings allowed on this link (their X25519 keys are derived and pinned). */
  readonly peers: Iterable<Uint8Array>;
  /** Give up on a handshake that has not finished within this long. */
  readonly timeoutMs?: number;
}

/**
 * Runs the XX handshake on a connected socket; resolves with the encrypted stream and the
 * peer's Ed25519 key (hex), or rejects (and destroys the socket) on any failure.
 */
export function secureSocket(socket: Socket, opts: NoiseLinkOptions): Promise<{ stream: Duplex; peer: string }> {
  const pinned = new Map<string, string>();
  for (const k of opts.peers) pinned.set(toHex(x25519FromEd25519Public(k)), toHex(k));
  const hs = new NoiseXX({ initiator: opts.initiator, staticSecret: opts.staticSecret, prologue: PROLOGUE });
  socket.setNoDelay(true);
  return new Promise((resolve, reject) => {
    let done = false;
    const finish = (err?: NoiseLinkError): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.off('error', onClose);
      if (err) {
        socket.destroy();
        return reject(err);
      }
      const s = hs.session!;
      socket.pause();
      resolve({ stream: new NoiseStream(socket, s, reader.rest()), peer: pinned.get(toHex(s.remoteStatic))! });
    };
    const timer = setTimeout(
      () => finish(new NoiseLinkError('noise/handshake', 'handshake timed out')),
      opts.timeoutMs ?? 10_000,
    );
    const reader = new MessageReader((m) => {
      if (done) return false;
      const r = hs.readMessage(m);
      if (!r.ok) finish(new NoiseLinkError('noise/handshake', `${r.error.code}: ${r.error.message}`));
      // Pin as soon as the remote static key is known: the responder's identity before we reveal ours.
      else if (hs.remoteStatic && !pinned.has(toHex(hs.remoteStatic)))
        finish(new NoiseLinkError('noise/unknown-peer', 'remote key is not a known sibling gateway'));
      if (done) return false;
      if (hs.myTurn) socket.write(frame(hs.writeMessage()));
      if (hs.session) finish();
      return !done; // the bytes after the handshake belong to the transport stream
    });
    const onData = (c: Buffer): void => reader.push(c);
    const onClose = (): void => finish(new NoiseLinkError('noise/closed', 'link closed during the handshake'));
    socket.on('data', onData);
    socket.once('close', onClose);
    socket.once('error', onClose);
    if (hs.myTurn) socket.write(frame(hs.writeMessage()));
  });
}
