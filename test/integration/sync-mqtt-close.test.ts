/**
 * A sync bus on an external broker closes promptly even with QoS 1 publishes unacked (found
 * by the fault campaign, test/chaos: after a Mosquitto restart a gateway never finished its
 * SIGTERM shutdown, mqtt.js's graceful end() waiting for acks that would never come). The
 * broker here is a real `mosquitto`, frozen with SIGSTOP so nothing it received is acked.
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { publicKeyFromSeed, signEd25519 } from '../../gateway/crypto/ed25519.js';
import { BlockLog } from '../../gateway/log/block-log.js';
import { Store } from '../../gateway/store/store.js';
import { clientBus, syncOverMqtt } from '../../gateway/sync/mqtt.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { needs } from '../helpers/system-tools.js';
import { tempDir, waitFor } from '../helpers/env.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

describe('sync bus close', needs('mosquitto'), () => {
  it('does not wait for acks a stalled broker will never send (closes, where a graceful end would wait forever), and fails the publishes left in flight', async () => {
    const { url, proc: mosq } = await startMosquitto();
    const seed = randomBytes(32);
    const bus = await clientBus(url, { publicKey: publicKeyFromSeed(seed), sign: (m) => signEd25519(seed, m) });
    mosq.kill('SIGSTOP'); // frozen: the publish below stays unacked
    const unacked = bus.publish('outpost/v1/sync/aa/bb/i', Uint8Array.of(1, 2, 3)).then(
      () => 'acked',
      () => 'failed',
    );
    await new Promise((r) => setTimeout(r, 100));
    // A generous bound, not a timing claim: a graceful end waits for the PUBACK until the keepalive
    // gives up on the frozen broker (over a minute), a forced one returns at once.
    const closed = await Promise.race([
      bus.close().then(() => true),
      new Promise<false>((r) => setTimeout(() => r(false), 15_000)),
    ]);
    expect(closed).toBe(true);
    // …and the publish left in flight fails rather than pending forever (a session awaiting it would never end).
    expect(await Promise.race([unacked, new Promise((r) => setTimeout(() => r('pending'), 10_000))])).toBe('failed');
  });

  it('a dial whose broker died before its first publish ends at its idle timeout instead of hanging (link.end does not wait on a dead link)', async () => {
    const { url, proc: mosq } = await startMosquitto();
    const { dir, cleanup } = tempDir('outpost-mq-dial-');
    cleanups.push(cleanup);
    const store = Store.open(dir);
    cleanups.push(() => void store.close());
    const seed = randomBytes(32);
    const identity = { publicKey: publicKeyFromSeed(seed), sign: (m: Uint8Array) => signEd25519(seed, m) };
    const log = new BlockLog(store, identity);
    const bus = await clientBus(url, identity);
    cleanups.push(() => void bus.close());
    let down = false;
    bus.onDown(() => (down = true));
    mosq.kill('SIGKILL'); // a broker restart between the dialer's connect and its first publish
    await waitFor(() => down, 5000, 'connection lost');
    const peer = publicKeyFromSeed(randomBytes(32));
    // mqtt.js keeps the auth-hello pending while offline; the link idles out after 500 ms.
    const dial = syncOverMqtt(bus, peer, { log, identity, peers: [peer], idleTimeoutMs: 500 }).then(
      () => 'ended',
      () => 'failed',
    );
    expect(await Promise.race([dial, new Promise((r) => setTimeout(() => r('hung'), 15_000))])).toBe('failed'); // hung: forever
  });

  it('connecting to a server that closes before CONNACK fails within the connect timeout instead of hanging', async () => {
    // A restarting broker, or a proxy whose backend is down, accepts and closes at once.
    const server = createServer((sock) => sock.destroy());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(() => void server.close());
    const url = `mqtt://127.0.0.1:${(server.address() as { port: number }).port}`;
    const seed = randomBytes(32);
    const attempt = clientBus(
      url,
      { publicKey: publicKeyFromSeed(seed), sign: (m) => signEd25519(seed, m) },
      { connectTimeoutMs: 2000 },
    ).then(
      () => 'connected',
      () => 'failed',
    );
    expect(await Promise.race([attempt, new Promise((r) => setTimeout(() => r('hung'), 15_000))])).toBe('failed'); // hung: forever
  });
});
