/**
 * Direct TCP links between sibling gateways. Each message is a 4-byte
 * big-endian length and the CBOR bytes (at most MAX_LINK_MESSAGE). A link
 * starts with mutual authentication by signed challenge (protocols/sync.ts:
 * auth-hello with key and nonce, then auth-proof); a gateway whose key is not
 * in `peers` is refused with auth-refused and the connection closed, before
 * any sync message is read. Then one exchange runs (the dialer is the
 * initiator, see engine.ts) and the dialer closes the link.
 */
import { randomBytes } from 'node:crypto';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import {
  decodeAuthMessage,
  encodeAuthMessage,
  MAX_BLOCK_BYTES,
  NONCE_BYTES,
  syncAuthInput,
  toHex,
} from '../../protocols/index.js';
import { verifyEd25519 } from '../crypto/ed25519.js';
import type { BlockLog } from '../log/block-log.js';
import { SyncSession, type SyncStats } from './engine.js';

export const MAX_LINK_MESSAGE = MAX_BLOCK_BYTES + 1024;

export interface LinkIdentity {
  readonly publicKey: Uint8Array;
  readonly sign: (message: Uint8Array) => Uint8Array;
}

export interface LinkOptions {
  readonly log: BlockLog;
  readonly identity: LinkIdentity;
  /** Raw public keys of the sibling gateways allowed on this link. */
  readonly peers: Iterable<Uint8Array>;
  /** Give up on a silent link after this long (default 30 s). */
  readonly idleTimeoutMs?: number;
}

export class LinkError extends Error {
  constructor(
    readonly code: 'refused' | 'auth-failed' | 'protocol' | 'closed' | 'too-large' | 'timeout',
    message: string,
  ) {
    super(message);
    this.name = 'LinkError';
  }
}

/** Length-prefixed messages over a socket, as an async queue. */
class Framed {
  private buf: Buffer = Buffer.alloc(0);
  private readonly queue: Uint8Array[] = [];
  private waiter: ((v: Uint8Array | LinkError) => void) | undefined;
  private error: LinkError | undefined;

  constructor(readonly socket: Socket, idleMs: number) {
    socket.setNoDelay(true);
    socket.setTimeout(idleMs, () => this.fail(new LinkError('timeout', 'link idle too long')));
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('close', () => this.fail(new LinkError('closed', 'link closed')));
    socket.on('error', (err) => this.fail(new LinkError('closed', err.message)));
  }

  private onData(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    while (this.buf.length >= 4) {
      const n = this.buf.readUInt32BE(0);
      if (n > MAX_LINK_MESSAGE) {
        this.fail(new LinkError('too-large', `message of ${n} bytes`));
        this.socket.destroy();
        return;
      }
      if (this.buf.length < 4 + n) break;
      const msg = new Uint8Array(this.buf.subarray(4, 4 + n));
      this.buf = this.buf.subarray(4 + n);
      if (this.waiter) {
        const w = this.waiter;
        this.waiter = undefined;
        w(msg);
      } else this.queue.push(msg);
    }
  }

  private fail(e: LinkError): void {
    this.error ??= e;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w(e);
    }
  }

  /** The next message; rejects with LinkError once the link is gone. */
  next(): Promise<Uint8Array> {
    const q = this.queue.shift();
    if (q) return Promise.resolve(q);
    if (this.error) return Promise.reject(this.error);
    return new Promise((resolve, reject) => {
      this.waiter = (v) => (v instanceof LinkError ? reject(v) : resolve(v));
    });
  }

  send(msg: Uint8Array): void {
    const head = Buffer.alloc(4);
    head.writeUInt32BE(msg.length);
    this.socket.write(Buffer.concat([head, msg]));
  }

  end(): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.destroyed) return resolve();
      this.socket.once('close', () => resolve());
      this.socket.end();
    });
  }
}

/** Mutual authentication; resolves with the peer's key (hex) or throws LinkError after refusing. */
async function authenticate(link: Framed, opts: LinkOptions): Promise<string> {
  const known = new Set([...opts.peers].map(toHex));
  const nonce = randomBytes(NONCE_BYTES);
  link.send(encodeAuthMessage({ type: 'auth-hello', publicKey: opts.identity.publicKey, nonce }));
  const h = decodeAuthMessage(await link.next());
  if (!h.ok) throw new LinkError('protocol', h.error.message);
  if (h.value.type === 'auth-refused') throw new LinkError('refused', `peer refused: ${h.value.reason}`);
  if (h.value.type !== 'auth-hello') throw new LinkError('protocol', 'expected auth-hello');
  const peer = h.value.publicKey;
  const peerHex = toHex(peer);
  if (!known.has(peerHex)) {
    link.send(encodeAuthMessage({ type: 'auth-refused', reason: 'unknown gateway' }));
    await link.end();
    throw new LinkError('refused', `unknown gateway ${peerHex}`);
  }
  link.send(encodeAuthMessage({ type: 'auth-proof', signature: opts.identity.sign(syncAuthInput(opts.identity.publicKey, peer, h.value.nonce, nonce)) }));
  const p = decodeAuthMessage(await link.next());
  if (!p.ok) throw new LinkError('protocol', p.error.message);
  if (p.value.type === 'auth-refused') throw new LinkError('refused', `peer refused: ${p.value.reason}`);
  if (p.value.type !== 'auth-proof' || !verifyEd25519(peer, syncAuthInput(peer, opts.identity.publicKey, nonce, h.value.nonce), p.value.signature)) {
    link.send(encodeAuthMessage({ type: 'auth-refused', reason: 'bad proof' }));
    await link.end();
    throw new LinkError('auth-failed', `gateway ${peerHex} did not prove its key`);
  }
  return peerHex;
}

/** Runs one side of an exchange until the session is finished. */
async function run(link: Framed, session: SyncSession, first: Uint8Array[]): Promise<void> {
  for (const m of first) link.send(m);
  while (!session.finished) {
    const msg = await link.next();
    // The peer may still refuse after the handshake (our proof did not verify on its side).
    if (msg.length < 256) {
      const refusal = decodeAuthMessage(msg);
      if (refusal.ok && refusal.value.type === 'auth-refused') throw new LinkError('refused', `peer refused: ${refusal.value.reason}`);
    }
    for (const out of session.receive(msg)) link.send(out);
  }
  if (session.stats.protocolError) throw new LinkError('protocol', session.stats.protocolError);
}

export interface LinkResult {
  readonly peer: string;
  readonly stats: SyncStats;
}

/** Dials a sibling, authenticates both ways, and runs one exchange as the initiator. */
export async function syncOverTcp(host: string, port: number, opts: LinkOptions & { probe?: boolean }): Promise<LinkResult> {
  const socket = createConnection({ host, port });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const link = new Framed(socket, opts.idleTimeoutMs ?? 30_000);
  try {
    const peer = await authenticate(link, opts);
    const session = new SyncSession(opts.log);
    await run(link, session, session.open({ probe: opts.probe ?? false }));
    await opts.log.durable();
    return { peer, stats: session.stats };
  } finally {
    await link.end();
  }
}

export interface SyncServerEvents {
  /** A finished exchange (or a refused / failed link, with `error`). */
  readonly onLink?: (r: { peer?: string; stats?: SyncStats; error?: LinkError }) => void;
}

/** Accepts sibling links and answers each as the responder. */
export class SyncServer {
  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static listen(host: string, port: number, opts: LinkOptions & SyncServerEvents): Promise<SyncServer> {
    const sockets = new Set<Socket>();
    const server = createServer((socket) => {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
      const link = new Framed(socket, opts.idleTimeoutMs ?? 30_000);
      let peer: string | undefined;
      const session = new SyncSession(opts.log);
      (async () => {
        peer = await authenticate(link, opts);
        await run(link, session, []);
        await opts.log.durable();
        opts.onLink?.({ peer, stats: session.stats });
      })().catch((err: unknown) => {
        // A link cut after its blocks were applied loses nothing: they are queued and become durable.
        const e = err instanceof LinkError ? err : new LinkError('protocol', String(err));
        opts.onLink?.({ ...(peer !== undefined && { peer }), stats: session.stats, error: e });
        socket.destroy();
      });
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
