/**
 * Sensor board profiles (hardware/profiles/*.yaml): for a device model, the
 * SenML records its firmware sends, with units and Home Assistant classes.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';

const PROFILES_DIR = new URL('../hardware/profiles/', import.meta.url).pathname;

/** SenML units (RFC 8428 §12.1 and the SenML units registry) used by the profiles. */
const SENML_UNITS = [
  'Cel',
  '%RH',
  'Pa',
  'm/s2',
  'V',
  'A',
  'W',
  'Wh',
  'lx',
  'dBW',
  '%EL',
  'count',
  '/',
  'm',
  'kg',
  's',
  'Hz',
  'ppm',
  'mol/mol',
  'K',
  'rad',
] as const;

const recordSchema = z
  .object({
    /** The SenML name after the device's base name ("temp" for "press-01:temp"). */
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9\-:./_]*$/, { message: 'must be a SenML name (RFC 8428 §4.5.1)' }),
    unit: z.enum(SENML_UNITS).optional(),
    /** A boolean record (vb), shown as a binary sensor. */
    binary: z.boolean().default(false),
    deviceClass: z
      .string()
      .regex(/^[a-z_]+$/)
      .optional(),
    stateClass: z.enum(['measurement', 'total', 'total_increasing']).optional(),
    precision: z.number().int().min(0).max(6).optional(),
  })
  .strict();

export const profileSchema = z
  .object({
    model: z.string().min(1).max(64),
    board: z.string().min(1).max(200),
    transports: z.array(z.enum(['serial', 'ble', 'mqtt'])).min(1),
    records: z.array(recordSchema).min(1).max(64),
  })
  .strict();

export type SensorProfile = z.infer<typeof profileSchema>;
export type RecordProfile = SensorProfile['records'][number];

const listSchema = z.object({ profiles: z.array(profileSchema).min(1) }).strict();

/** Loads every profile under `dir`; throws naming the file and key of the first invalid one. */
export function loadProfiles(dir = PROFILES_DIR): Map<string, SensorProfile> {
  const out = new Map<string, SensorProfile>();
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()) {
    const raw: unknown = parseYaml(readFileSync(join(dir, file), 'utf8'));
    const isList = typeof raw === 'object' && raw !== null && 'profiles' in raw;
    const r = isList ? listSchema.safeParse(raw) : profileSchema.safeParse(raw);
    if (!r.success) {
      const i = r.error.issues[0]!;
      throw new Error(`${file}: ${i.path.join('.') || '(top level)'}: ${i.message}`);
    }
    for (const p of 'profiles' in r.data ? r.data.profiles : [r.data]) {
      if (out.has(p.model)) throw new Error(`${file}: model ${p.model} is defined twice`);
      out.set(p.model, p);
    }
  }
  return out;
}
