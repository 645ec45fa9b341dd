/** A throwaway aedes broker on 127.0.0.1 for firmware-sim tests, restartable on the same port. */
import net from 'node:net';
import { Aedes, type AedesOptions } from 'aedes';

export interface TestBroker {
  readonly port: number;
  readonly url: string;
  readonly broker: Aedes;
  /** Closes every client connection and the listener. */
  close(): Promise<void>;
}

export async function startBroker(opts: AedesOptions = {}, port = 0): Promise<TestBroker> {
  const broker = await Aedes.createBroker(opts);
  const server = net.createServer(broker.handle);
  const sockets = new Set<net.Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const bound = (server.address() as net.AddressInfo).port;
  return {
    port: bound,
    url: `mqtt://127.0.0.1:${bound}`,
    broker,
    async close() {
      const closed = new Promise<void>((r) => server.close(() => r()));
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => broker.close(() => r()));
      await closed;
    },
  };
}
