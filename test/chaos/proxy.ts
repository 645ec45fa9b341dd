/**
 * A TCP proxy standing for the network between two siblings: `cut()` destroys every
 * connection through it and refuses new ones (a link that is down, not a slow one),
 * `restore()` lets connections through again.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';

export class TcpProxy {
  private readonly sockets = new Set<Socket>();
  private up = true;

  private constructor(
    private readonly server: Server,
    readonly port: number,
    readonly name: string,
  ) {}

  /** Listens on an ephemeral port of 127.0.0.1 and forwards to 127.0.0.1:`targetPort`. */
  static async start(name: string, targetPort: number): Promise<TcpProxy> {
    let proxy: TcpProxy | undefined;
    const server = createServer((client) => proxy!.accept(client, targetPort));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    proxy = new TcpProxy(server, (server.address() as { port: number }).port, name);
    return proxy;
  }

  get isUp(): boolean {
    return this.up;
  }

  cut(): void {
    this.up = false;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  restore(): void {
    this.up = true;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise((r) => this.server.close(r));
  }

  private accept(client: Socket, targetPort: number): void {
    if (!this.up) return void client.destroy();
    const upstream = createConnection({ host: '127.0.0.1', port: targetPort });
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      // Either end failing or closing takes the pair down, as a real path would.
      s.on('error', () => undefined);
      s.on('close', () => {
        this.sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  }
}
