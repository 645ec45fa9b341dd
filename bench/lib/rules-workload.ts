/** The bench rule set: background rules of every kind over `devices` devices, plus a probe rule. */
export const benchDeviceId = (i: number, devices: number): string => `bg-${String(i % devices).padStart(3, '0')}`;

/** RULES − 1 background rules of five kinds, round-robin over the devices, plus the probe rule (cell-1 vib > 8). The machines fire on the replay's temperatures (20..69, cycling). */
export function ruleFile(RULES: number, DEVICES: number): string {
  const dev = (i: number): string => benchDeviceId(i, DEVICES);
  const kinds = [
    (d: string, i: number) =>
      `  - id: r${i}\n    trigger: { devices: [${d}], names: [temp] }\n    window: { sliding: 10s }\n    aggregate: { a: avg(temp), m: max(temp) }\n    when: 'agg.a > 1000.0 || agg.m > 2000.0'\n    then: [{ alert: "hot {{agg.a}}" }]\n`,
    (d: string, i: number) =>
      `  - id: r${i}\n    trigger: { devices: [${d}], names: [temp] }\n    when: 'v.temp > 900.0'\n    clear: 'v.temp < 800.0'\n    for: 5s\n    then: [{ command: { device: ${d}, actuator: fan, value: true, ttl: 5s } }]\n    onClear: [{ command: { device: ${d}, actuator: fan, value: false, ttl: 5s } }]\n`,
    (d: string, i: number) =>
      `  - id: r${i}\n    trigger: { devices: [${d}] }\n    window: { tumbling: 1m }\n    aggregate: { r: rate(temp), n: count(temp) }\n    when: 'agg.n > 0.0 && agg.r > 50.0'\n    fire: every\n    cooldown: 5m\n    rateLimit: { max: 3, per: 1h }\n    then: [{ publish: { topic: "t/${d}", payload: "{{agg.r}}" } }]\n`,
    (d: string, i: number) =>
      `  - id: r${i}\n    trigger: { devices: [${d}] }\n    when: 'v.temp > 950.0'\n    debounce: 2s\n    then: [{ alert: "x" }]\n    watchdog: { silence: 1h, then: [{ alert: "silent" }] }\n`,
    (d: string, i: number) =>
      `  - id: r${i}\n    trigger: { devices: [${d}] }\n    machine:\n      window: { count: 5 }\n      aggregate: { m: max(temp) }\n      initial: ok\n      states:\n        ok: {}\n        hot: { minDwell: 30s, onEnter: [{ alert: "hot" }] }\n      transitions:\n        - { from: ok, to: hot, when: 'has(agg.m) && agg.m > 68.0' }\n        - { from: hot, to: ok, when: 'has(agg.m) && agg.m < 30.0' }\n`,
  ];
  const rules = Array.from({ length: RULES - 1 }, (_, i) => kinds[i % kinds.length]!(dev(i), i));
  rules.push(
    `  - id: probe\n    trigger: { devices: [cell-1], names: [vib] }\n    when: 'v.vib > 8.0'\n    fire: every\n    then: [{ command: { device: cell-1, actuator: conveyor, value: false, ttl: 2s } }]\n`,
  );
  return `rules:\n${rules.join('')}`;
}
