/**
 * The flood of broker-flood.test.ts, in its own process (an attacker is another machine; here it
 * is at least another process, run at a lower priority than the gateway). Opens `rate` TCP
 * connections a second for `seconds` seconds from a few loopback source addresses, a quarter of
 * each kind:
 * - idle sockets on the plain listener (never send anything; the gateway's CONNECT timeout or
 *   its per-address cap ends them);
 * - garbage on the plain listener: bytes that are no CONNECT, or a CONNECT header announcing a
 *   megabyte followed by junk (the pre-authentication byte cap);
 * - CONNECTs with a bad token: signed by a wrong key for an enrolled device's id, half of them
 *   with that device's client id (a takeover attempt), so the gateway checks a signature;
 * - on the TLS listener: no ClientHello, only junk or nothing.
 * Prints one JSON line of counts when done. argv[2]: JSON of `FloodPlan`.
 */
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { tokenFor } from '../helpers/mosquitto-clients.js';

interface FloodPlan {
  plainPort: number;
  tlsPort: number;
  rate: number;
  seconds: number;
  addresses: string[];
  devices: string[];
  gatewayId: string;
}

const plan = JSON.parse(process.argv[2]!) as FloodPlan;

const str = (s: string): Buffer => {
  const b = Buffer.from(s);
  return Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b]);
};
const varint = (n: number): Buffer => {
  const out: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out.push(byte);
  } while (n > 0);
  return Buffer.from(out);
};
/** MQTT 3.1.1 CONNECT (§3.1) with username and password, clean session, keepalive 60 s. */
const connectPacket = (clientId: string, user: string, password: string): Buffer => {
  const body = Buffer.concat([str('MQTT'), Buffer.from([4, 0xc2, 0, 60]), str(clientId), str(user), str(password)]);
  return Buffer.concat([Buffer.from([0x10]), varint(body.length), body]);
};

// Tokens over the right claims, signed by keys that are not the devices': each costs a verify.
const badConnects = Array.from({ length: 64 }, (_, i) => {
  const device = plan.devices[i % plan.devices.length]!;
  const token = tokenFor(device, randomBytes(32), plan.gatewayId);
  return connectPacket(i % 2 === 0 ? device : `flood-${i}`, device, token);
});
const junk = randomBytes(8192);
const oversize = Buffer.concat([Buffer.from([0x10]), varint(1 << 20), junk]);

const counts = { opened: 0, connected: 0, closedByGateway: 0, errors: 0, open: 0, maxOpen: 0 };
const MAX_OPEN = 16_000; // well under the fd limit; the gateway's caps keep the real number far lower

function open(i: number): void {
  const kind = i % 4;
  const port = kind === 3 ? plan.tlsPort : plan.plainPort;
  const s: Socket = connect({ host: '127.0.0.1', port, localAddress: plan.addresses[i % plan.addresses.length] });
  counts.opened++;
  counts.open++;
  counts.maxOpen = Math.max(counts.maxOpen, counts.open);
  let mine = false;
  // Whatever the gateway does not end (its CONNECT timeout is 10 s), the attacker gives up on after 12 s.
  const giveUp = setTimeout(() => {
    mine = true;
    s.destroy();
  }, 12_000);
  s.on('connect', () => {
    counts.connected++;
    if (kind === 1) s.write(i % 8 === 1 ? oversize : junk.subarray(0, 64 + (i % 512)));
    else if (kind === 2) s.write(badConnects[i % badConnects.length]!);
    else if (kind === 3 && i % 8 === 3) s.write(junk.subarray(0, 512));
  });
  s.on('data', () => {}); // a CONNACK refusal, read and ignored
  s.on('error', () => counts.errors++);
  s.on('close', () => {
    clearTimeout(giveUp);
    counts.open--;
    if (!mine) counts.closedByGateway++;
  });
}

const start = Date.now();
const total = plan.rate * plan.seconds;
process.stdout.write('flooding\n');
await new Promise<void>((resolve) => {
  const tick = setInterval(() => {
    // Catch up with the wall clock: the rate holds even when a tick comes late.
    const due = Math.min(total, Math.floor(((Date.now() - start) / 1000) * plan.rate));
    while (counts.opened < due && counts.open < MAX_OPEN) open(counts.opened);
    if (counts.opened >= total) {
      clearInterval(tick);
      resolve();
    }
  }, 5);
});
const seconds = (Date.now() - start) / 1000;
// Let the last sockets see their end, then report.
const end = Date.now() + 5000;
while (counts.open > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
process.stdout.write(`${JSON.stringify({ ...counts, seconds })}\n`);
process.exit(0);
