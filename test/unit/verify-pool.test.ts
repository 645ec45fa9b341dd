import { afterAll, describe, expect, it } from 'vitest';
import { checkEd25519PublicKey } from '../../protocols/index.js';
import { publicKeyFromSeed, signEd25519 } from '../../gateway/crypto/ed25519.js';
import { VerifyPool } from '../../gateway/ingest/verify-pool.js';

describe('verify pool', () => {
  const pools = [new VerifyPool(2), new VerifyPool(0)];
  afterAll(async () => Promise.all(pools.map((p) => p.close())));
  const seed = new Uint8Array(32).fill(9);
  const pub = publicKeyFromSeed(seed);
  const msg = (i: number) => new TextEncoder().encode(`frame ${i}`);

  it.each([
    ['workers', 0],
    ['inline', 1],
  ])('answers each job in order (%s)', async (_name, idx) => {
    const pool = pools[idx]!;
    // 600 jobs is a backlog one worker does not take alone, so both workers get a share.
    const jobs = Array.from({ length: 600 }, (_, i) => {
      const signature = signEd25519(seed, msg(i));
      if (i % 7 === 3) signature[5]! ^= 1; // RFC 8032 §5.1.7: a changed signature fails
      return { publicKey: pub, signature, message: i % 11 === 4 ? msg(i + 1) : msg(i) };
    });
    const got = await pool.verify(jobs);
    expect(got).toEqual(jobs.map((_, i) => !(i % 7 === 3 || i % 11 === 4)));
  });

  it('answers jobs with a wrongly sized key or signature as invalid', async () => {
    const good = { publicKey: pub, signature: signEd25519(seed, msg(1)), message: msg(1) };
    const jobs = [
      good,
      { ...good, signature: good.signature.subarray(0, 63) },
      { ...good, publicKey: pub.subarray(0, 31) },
      good,
    ];
    for (const pool of pools) expect(await pool.verify(jobs)).toEqual([true, false, false, true]);
  });

  it('would accept anything under a small-order key, which is why enrolment refuses those keys', async () => {
    // An all-zero key is a point of order 4; OpenSSL accepts the all-zero signature under it
    // for every message whose hash makes [k]A vanish (about one in four).
    const zero = Array.from({ length: 16 }, (_, i) => ({
      publicKey: new Uint8Array(32),
      signature: new Uint8Array(64),
      message: msg(i),
    }));
    expect((await pools[0]!.verify(zero)).filter(Boolean).length).toBeGreaterThan(0);
    expect(checkEd25519PublicKey(zero[0]!.publicKey)).toMatchObject({ ok: false, error: { code: 'key/small-order' } });
  });

  it('runs one worker for small batches and grows to its size under a backlog, then retires the idle extra', async () => {
    const pool = new VerifyPool(3, 300);
    pools.push(pool);
    const job = (i: number) => ({ publicKey: pub, signature: signEd25519(seed, msg(i)), message: msg(i) });
    expect(pool.running).toBe(1);
    for (let i = 0; i < 5; i++) expect(await pool.verify([job(i)])).toEqual([true]);
    expect(pool.running).toBe(1); // one frame at a time never needs a second thread
    const burst = Array.from({ length: 800 }, (_, i) => job(i));
    const verified = pool.verify(burst);
    expect(pool.running).toBe(3); // grown as the burst was handed over (a worker may retire once done)
    expect(await verified).toEqual(burst.map(() => true));
    // Idle: the extra workers stop (after 300 ms here), the first stays, and the pool still verifies.
    await expect.poll(() => pool.running, { timeout: 20_000, interval: 100 }).toBe(1);
    expect(await pool.verify([job(7), { ...job(8), message: msg(9) }])).toEqual([true, false]);
  });

  it('keeps a steady load that one worker clears on the first, so an extra started by a burst retires under it', async () => {
    const pool = new VerifyPool(2, 300);
    pools.push(pool);
    const job = (i: number) => ({ publicKey: pub, signature: signEd25519(seed, msg(i)), message: msg(i) });
    const batch = Array.from({ length: 40 }, (_, i) => job(i));
    // 40 jobs at a time is over the split size but no backlog: one thread, however long it goes on.
    for (let i = 0; i < 5; i++) expect(await pool.verify(batch)).toEqual(batch.map(() => true));
    expect(pool.running).toBe(1);
    const burst = Array.from({ length: 600 }, (_, i) => job(i));
    const verified = pool.verify(burst);
    expect(pool.running).toBe(2);
    expect(await verified).toEqual(burst.map(() => true));
    // The same steady batches every 50 ms: they all go to the first worker, the second idles and stops.
    const t0 = Date.now();
    while (pool.running > 1 && Date.now() - t0 < 10_000) {
      expect(await pool.verify(batch)).toEqual(batch.map(() => true));
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(pool.running).toBe(1);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
  });
});
