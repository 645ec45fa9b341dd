/**
 * The broker's token replay memory (last token time per subject) is swept of subjects whose
 * last token is past twice the window, so subjects that stop connecting do not stay forever;
 * a replay within the window is still refused.
 */
import { describe, expect, it } from 'vitest';
import { publicKeyFromSeed } from '../../gateway/crypto/ed25519.js';
import { BrokerAccess } from '../../gateway/transports/broker-access.js';
import { tokenFor } from '../helpers/mosquitto-clients.js';

const seed = new Uint8Array(32).fill(7);
const publicKey = publicKeyFromSeed(seed);
const WINDOW = 60_000;

describe('BrokerAccess token memory', () => {
  it('5000 subjects connecting once each over hours: remembered subjects stay near those of the last 2 windows', () => {
    let now = 1_700_000_000_000;
    const access = new BrokerAccess({
      gatewayId: 'gw-test',
      tokenWindowMs: WINDOW,
      device: (id) => (id.startsWith('dev-') ? { publicKey, revoked: false } : undefined),
      now: () => now,
    });
    const login = (id: string, time = now) =>
      access.authenticate(
        id,
        id,
        new TextEncoder().encode(tokenFor(id, seed, 'gw-test', time)),
        false,
        () => undefined,
      );
    let peak = 0;
    for (let i = 0; i < 5000; i++) {
      now += 1000; // one new subject a second: 120 within twice the window
      expect(login(`dev-${i}`).ok).toBe(true);
      peak = Math.max(peak, access.tokenSubjects);
    }
    // The sweep runs when the map reaches max(1024, 2 × what was left).
    expect(peak).toBeLessThanOrEqual(1024);
    // A replay inside the window is still refused; a fresh token is taken.
    const t = now - 10;
    expect(login('dev-replayed', t).ok).toBe(true);
    expect(login('dev-replayed', t)).toMatchObject({ ok: false, code: 4 });
    now += 1;
    expect(login('dev-replayed').ok).toBe(true);
  });
});
