/**
 * The fleet bench's sink: an aedes broker (as the gateway embeds) that only counts
 * publishes and PUBACKs them, in its own process so its CPU is not the fleet's. Prints
 * `{"port":N}` on start; on each stdin line answers `{"publishes":N,"clients":N}`.
 */
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { Aedes } from 'aedes';

let publishes = 0;
const aedes = await Aedes.createBroker({
  authorizePublish: (_client, packet, cb) => {
    if (packet.topic.startsWith('outpost/')) publishes++;
    cb(null);
  },
});
const server = createServer(aedes.handle);
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
console.log(JSON.stringify({ port: (server.address() as { port: number }).port }));
for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim() === 'exit') break;
  console.log(JSON.stringify({ publishes, clients: aedes.connectedClients }));
}
server.close();
aedes.close();
process.exit(0);
