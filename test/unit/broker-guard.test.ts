/**
 * The broker's flood guard on sockets that stand in for accepted TCP connections (an accepted
 * socket and the TLS socket over it share both ends, so they carry the same address and ports),
 * and the throttle of refusal warnings. Real sockets under a real flood: broker-flood.test.ts.
 */
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { ConnectionGuard, LogThrottle } from '../../gateway/transports/broker-guard.js';

let nextPort = 40_000;
function fakeSocket(remoteAddress: string, remotePort = nextPort++) {
  const s = Object.assign(new EventEmitter(), {
    remoteAddress,
    remotePort,
    localPort: 8883,
    destroyed: false,
    destroy() {
      if (s.destroyed) return s;
      s.destroyed = true;
      s.emit('close');
      return s;
    },
  });
  return s as typeof s & Socket;
}
/** The TLS socket over `raw`: the same ends, another object. */
const over = (raw: Socket) => fakeSocket(raw.remoteAddress!, raw.remotePort);

const limits = { connectionsPerAddress: 4, pendingPerAddress: 2, connectsPerSecond: 10, preAuthBytes: 600 };

describe('ConnectionGuard', () => {
  it('counts a connection as unauthenticated from its accept until its client authenticates over TLS', () => {
    const g = new ConnectionGuard(limits);
    const [a, b, c] = [fakeSocket('10.0.0.1'), fakeSocket('10.0.0.1'), fakeSocket('10.0.0.1')];
    expect(g.admit(a)).toBe(true);
    expect(g.admit(b)).toBe(true);
    // Two handshakes hanging: a third connection from that address is cut at once.
    expect(g.admit(c)).toBe(false);
    expect(c.destroyed).toBe(true);
    expect(g.admit(fakeSocket('10.0.0.2'))).toBe(true); // another address is not affected
    // a's client authenticates on the TLS socket over it: a no longer pending, room for one more.
    g.authenticated(over(a));
    expect(g.admit(fakeSocket('10.0.0.1'))).toBe(true);
    expect(g.admit(fakeSocket('10.0.0.1'))).toBe(false);
    // a pending one closes: room again
    b.destroy();
    expect(g.admit(fakeSocket('10.0.0.1'))).toBe(true);
    expect(g.stats.refusedConnections).toBe(2);
  });

  it('caps all connections of an address, authenticated or not', () => {
    const g = new ConnectionGuard(limits);
    for (let i = 0; i < 4; i++) {
      const s = fakeSocket('10.0.0.3');
      expect(g.admit(s)).toBe(true);
      g.authenticated(s);
    }
    expect(g.admit(fakeSocket('10.0.0.3'))).toBe(false);
  });

  it('cuts a first packet that is not CONNECT, and more than preAuthBytes before authentication', () => {
    const g = new ConnectionGuard(limits);
    const junk = fakeSocket('10.0.0.4');
    g.admit(junk);
    g.watch(junk);
    junk.emit('data', Buffer.from([0x30, 0, 0]));
    expect(junk.destroyed).toBe(true);

    const big = fakeSocket('10.0.0.4');
    g.admit(big);
    g.watch(big);
    big.emit('data', Buffer.concat([Buffer.from([0x10]), Buffer.alloc(400)]));
    expect(big.destroyed).toBe(false);
    big.emit('data', Buffer.alloc(400));
    expect(big.destroyed).toBe(true);

    const ok = fakeSocket('10.0.0.4');
    g.admit(ok);
    g.watch(ok);
    ok.emit('data', Buffer.concat([Buffer.from([0x10]), Buffer.alloc(100)]));
    g.authenticated(ok);
    ok.emit('data', Buffer.alloc(10_000)); // authenticated: no longer counted
    expect(ok.destroyed).toBe(false);
    expect(g.stats.oversizePreAuth).toBe(2);
  });

  it('lets through CONNECTs at the rate per address, bursts up to twice it', () => {
    let t = 0;
    const g = new ConnectionGuard(limits, () => t);
    const s = fakeSocket('10.0.0.5');
    const taken = Array.from({ length: 25 }, () => g.takeConnect(s)).filter(Boolean).length;
    expect(taken).toBe(20);
    t += 500; // half a second: five more
    expect(Array.from({ length: 10 }, () => g.takeConnect(s)).filter(Boolean).length).toBe(5);
    expect(g.takeConnect(fakeSocket('10.0.0.6'))).toBe(true);
  });
});

describe('LogThrottle', () => {
  it('lets a burst through per period and reports how many it left out', () => {
    let t = 0;
    const th = new LogThrottle(3, 1000, () => t);
    const first = Array.from({ length: 10 }, () => th.take());
    expect(first.filter((x) => x !== undefined)).toEqual([{ suppressed: 0 }, { suppressed: 0 }, { suppressed: 0 }]);
    t = 1000;
    expect(th.take()).toEqual({ suppressed: 7 });
    expect(th.take()).toEqual({ suppressed: 0 });
  });
});
