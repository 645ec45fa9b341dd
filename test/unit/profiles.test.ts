/** hardware/profiles: every file valid, models unique, and the simulator's models match what firmware-sim really sends. */
import { describe, expect, it } from 'vitest';
import { resolvePack } from '../../protocols/index.js';
import { DEVICE_MODELS, MODEL_NAMES, SensorSuite } from '../../firmware-sim/sensors.js';
import { loadProfiles } from '../../gateway/profiles.js';

describe('sensor board profiles', () => {
  const profiles = loadProfiles();

  it('[valid] all files load, with at least four real boards besides the simulator', () => {
    const real = [...profiles.values()].filter((p) => !p.board.startsWith('firmware-sim'));
    expect(real.length).toBeGreaterThanOrEqual(4);
    for (const p of profiles.values())
      expect(new Set(p.records.map((r) => r.name)).size, p.model).toBe(p.records.length);
  });

  it('[sim] every firmware-sim model has a profile whose names, units and value kinds match a real sample', () => {
    expect(Object.keys(DEVICE_MODELS).sort()).toEqual(MODEL_NAMES.slice().sort());
    for (const model of MODEL_NAMES) {
      const p = profiles.get(model);
      expect(p, model).toBeDefined();
      const pack = resolvePack(new SensorSuite(model, 1).sample(Date.now(), 'dev-1:'));
      expect(pack.ok).toBe(true);
      if (!pack.ok) continue;
      const sent = pack.value.map((r) => ({
        name: r.name.slice('dev-1:'.length),
        unit: r.unit,
        binary: r.boolValue !== undefined,
      }));
      expect(sent, model).toEqual(p!.records.map((r) => ({ name: r.name, unit: r.unit, binary: r.binary })));
    }
  });

  it('[invalid] a profile with an unknown unit is refused naming the file and key', async () => {
    const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'profiles-'));
    writeFileSync(
      join(dir, 'bad.yaml'),
      'model: x\nboard: y\ntransports: [mqtt]\nrecords:\n  - { name: temp, unit: degC }\n',
    );
    expect(() => loadProfiles(dir)).toThrow(/bad\.yaml: records\.0\.unit/);
    rmSync(dir, { recursive: true });
  });
});
