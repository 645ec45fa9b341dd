/**
 * Direct TCP links between sibling gateways. Each message is a 4-byte
 * big-endian length and the CBOR bytes (at most MAX_LINK_MESSAGE). A link
 * starts with mutual authentication by signed challenge (link.ts); a gateway
 * whose key is not in `peers` is refused with auth-refused and the connection
 * closed, before any sync message is read. Then one exchange runs (the dialer
 * is the initiator, see engine.ts) and the dialer closes the link.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import {
  initiate,
  LinkError,
  type LinkOptions,
  type LinkResult,
  MAX_LINK_MESSAGE,
  type MessageLink,
  MessageQueue,
  respond,
  type SyncLinkEvents,
} from './link.js';
import { secureSocket } from './noise-stream.js';

export { LinkError, type LinkIdentity, type LinkOptions, type LinkResult } from './link.js';
export type SyncServerEvents = SyncLinkEvents;

/** Received messages held before the socket is paused (backpressure to the sender). */
const PAUSE_AT = 64;
const RESUME_AT = 16;

/** Length-prefixed messages over a socket. */
class Framed implements MessageLink {
  private buf: Buffer = Buffer.alloc(0);
  private readonly queue = new MessageQueue();
  private paused = false;

  /** `socket`: the byte stream (the TCP socket, or the Noise stream over it); `raw`: the TCP socket. */
  constructor(
    readonly socket: Duplex,
    raw: Socket,
    idleMs: number,
  ) {
    raw.setNoDelay(true);
    // Destroyed, not just failed: a sender waiting for 'drain' on a silent peer is released by 'close'.
    raw.setTimeout(idleMs, () => {
      this.queue.fail(new LinkError('timeout', 'link idle too long'));
      socket.destroy();
    });
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('close', () => this.queue.fail(new LinkError('closed', 'link closed')));
    socket.on('error', (err) => this.queue.fail(new LinkError('closed', err.message)));
  }

  private onData(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    while (this.buf.length >= 4) {
      const n = this.buf.readUInt32BE(0);
      if (n > MAX_LINK_MESSAGE) {
        this.queue.fail(new LinkError('too-large', `message of ${n} bytes`));
        this.socket.destroy();
        return;
      }
      if (this.buf.length < 4 + n) break;
      const msg = new Uint8Array(this.buf.subarray(4, 4 + n));
      this.buf = this.buf.subarray(4 + n);
      this.queue.push(msg);
    }
    // The reader is behind (verifying blocks): stop reading, so TCP pushes back on the sender.
    if (!this.paused && this.queue.size >= PAUSE_AT) {
      this.paused = true;
      this.socket.pause();
    }
  }

  next(): Promise<Uint8Array> {
    const p = this.queue.next();
    if (this.paused && this.queue.size <= RESUME_AT) {
      this.paused = false;
      this.socket.resume();
    }
    return p;
  }

  send(msg: Uint8Array): void | Promise<void> {
    if (this.socket.destroyed) return;
    const head = Buffer.alloc(4);
    head.writeUInt32BE(msg.length);
    if (this.socket.write(Buffer.concat([head, msg]))) return;
    // Kernel and socket buffers are full: wait for them to drain (or the link to go).
    return new Promise((resolve) => {
      const done = (): void => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      this.socket.on('drain', done);
      this.socket.on('close', done);
    });
  }

  end(): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.destroyed) return resolve();
      this.socket.once('close', () => resolve());
      // A peer that stopped reading never lets the close handshake finish: do not wait on it once
      // all we wrote is handed to the kernel. Before that, the peer may still be verifying what it
      // read (destroying then would cut the exchange's last blocks); the idle timeout bounds a
      // peer that reads nothing at all.
      this.socket.once('finish', () => setTimeout(() => this.socket.destroy(), 2000).unref());
      this.socket.end();
    });
  }
}

/** Options of a TCP link: with `noiseSecret` (this gateway's X25519 secret) the link is Noise-encrypted. */
export type TcpLinkOptions = LinkOptions & { readonly noiseSecret?: Uint8Array };

/** The framed link over a socket, encrypted first when the options say so. */
async function framed(socket: Socket, opts: TcpLinkOptions, initiator: boolean): Promise<Framed> {
  const idle = opts.idleTimeoutMs ?? 30_000;
  if (!opts.noiseSecret) return new Framed(socket, socket, idle);
  const { stream } = await secureSocket(socket, {
    initiator,
    staticSecret: opts.noiseSecret,
    peers: opts.peers,
    timeoutMs: idle,
  });
  return new Framed(stream, socket, idle);
}

/** Dials a sibling, authenticates both ways, and runs one exchange as the initiator. */
export async function syncOverTcp(
  host: string,
  port: number,
  opts: TcpLinkOptions & { probe?: boolean },
): Promise<LinkResult> {
  const socket = createConnection({ host, port });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  let link: Framed;
  try {
    link = await framed(socket, opts, true);
  } catch (e) {
    throw new LinkError('refused', (e as Error).message);
  }
  return initiate(link, opts);
}

/** Accepts sibling links and answers each as the responder. */
export class SyncServer {
  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static listen(host: string, port: number, opts: TcpLinkOptions & SyncServerEvents): Promise<SyncServer> {
    const sockets = new Set<Socket>();
    const server = createServer((socket) => {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
      framed(socket, opts, false).then(
        (link) => respond(link, opts, () => socket.destroy()),
        (e: Error) => opts.onLink?.({ error: new LinkError('refused', e.message) }),
      );
    });
    (server as Server & { sockets?: Set<Socket> }).sockets = sockets;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve(new SyncServer(server, (server.address() as { port: number }).port)));
    });
  }

  close(): Promise<void> {
    for (const s of (this.server as Server & { sockets?: Set<Socket> }).sockets ?? []) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
