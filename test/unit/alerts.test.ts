/**
 * The alert manager's memory: keys it no longer needs are forgotten (one-shot alerts carry
 * their message in the key, so a long-running gateway would otherwise grow with every
 * distinct alert), and a resolution no notifier needs (it was never told the alert fired)
 * is dropped, not kept and retried for good. The notifier is a recorder (the webhook at the
 * edge); time is a fake clock.
 */
import { describe, expect, it } from 'vitest';
import { AlertManager } from '../../gateway/export/alerts.js';
import type { Alert, Notifier } from '../../gateway/export/sinks/types.js';
import { createLogger } from '../../gateway/logger.js';

const settle = () => new Promise((r) => setTimeout(r, 0));

function setup(minIntervalMs: number) {
  let now = 1_000_000;
  let up = true;
  const sent: Alert[] = [];
  const notifier: Notifier = {
    name: 'hook',
    notify: async (a) => {
      if (!up) throw new Error('ECONNREFUSED');
      sent.push(a);
    },
    close: async () => {},
  };
  const m = new AlertManager(
    [notifier],
    { gateway: 'gw', minIntervalMs, maxPerMinute: 10_000, now: () => now, flushMs: 3_600_000 },
    createLogger('silent'),
  );
  return {
    m,
    sent,
    advance: (ms: number) => {
      now += ms;
    },
    setUp: (v: boolean) => {
      up = v;
    },
  };
}

describe('alert manager memory', () => {
  it('forgets one-shot and resolved keys once their hold-back interval has passed', async () => {
    const { m, sent, advance } = setup(60_000);
    for (let i = 0; i < 500; i++) {
      m.raise(`rule/press/hot ${i}`, 'rule', `hot ${i}`, undefined, true);
      m.raise(`health/device-offline/d${i}`, 'device-offline', `d${i} silent`);
      await settle();
      m.resolve(`health/device-offline/d${i}`);
      advance(61_000); // past the hold-back: the resolution goes out at this flush
      m.flush();
      await settle();
    }
    advance(61_000);
    m.flush();
    expect(sent.filter((a) => a.kind === 'rule')).toHaveLength(500);
    expect(sent.filter((a) => a.state === 'resolved')).toHaveLength(500);
    expect(m.tracked).toBe(0);
    await m.close();
  });

  it('holds a key back within its interval, then forgets it: a new firing after that is sent', async () => {
    const { m, sent, advance } = setup(60_000);
    m.raise('k', 'x', 'first');
    await settle();
    m.resolve('k');
    m.flush();
    await settle();
    expect(sent.map((a) => a.state)).toEqual(['firing']); // resolution held back
    advance(60_000);
    m.flush();
    await settle();
    expect(sent.map((a) => a.state)).toEqual(['firing', 'resolved']);
    expect(m.tracked).toBe(1); // within the interval of the resolution
    advance(60_000);
    m.flush();
    expect(m.tracked).toBe(0);
    m.raise('k', 'x', 'again');
    await settle();
    expect(sent.map((a) => `${a.state} ${a.message}`)).toEqual([
      'firing first',
      'resolved resolved: first',
      'firing again',
    ]);
    await m.close();
  });

  it('drops a resolution no notifier needs: the firing never got through', async () => {
    const { m, sent, setUp, advance } = setup(0);
    setUp(false);
    m.raise('k', 'x', 'down');
    await settle(); // the delivery failed
    m.resolve('k');
    setUp(true);
    advance(1_000);
    m.flush();
    await settle();
    expect(sent).toEqual([]);
    expect(m.tracked).toBe(0);
    expect(m.stats).toMatchObject({ sent: 0, failed: 1 });
    await m.close();
  });
});
