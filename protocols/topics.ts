/** MQTT topic scheme (DESIGN.md "Wire formats"). */
import { isValidId } from './ids.js';
import { ProtocolUsageError } from './result.js';

export const TOPIC_ROOT = 'outpost/v1';

const id = (v: string): string => {
  if (!isValidId(v)) throw new ProtocolUsageError('id/invalid', `"${v}" is not a valid id`);
  return v;
};

export const topics = {
  /** Device → gateway frames (QoS 1). */
  up: (device: string) => `${TOPIC_ROOT}/dev/${id(device)}/up`,
  /** Gateway → device signed commands. */
  cmd: (device: string) => `${TOPIC_ROOT}/dev/${id(device)}/cmd`,
  /** Device → gateway firmware update reports (signed by the device). */
  fwUp: (device: string) => `${TOPIC_ROOT}/dev/${id(device)}/fw-up`,
  /** Gateway → device firmware offers and chunks. */
  fwDown: (device: string) => `${TOPIC_ROOT}/dev/${id(device)}/fw-down`,
  /** Gateway status, retained, also the last will. */
  gatewayStatus: (gateway: string) => `${TOPIC_ROOT}/gw/${id(gateway)}/status`,
  upWildcard: `${TOPIC_ROOT}/dev/+/up`,
  fwUpWildcard: `${TOPIC_ROOT}/dev/+/fw-up`,
} as const;

export type ParsedTopic =
  | { kind: 'up' | 'cmd' | 'fw-up' | 'fw-down'; device: string }
  | { kind: 'gateway-status'; gateway: string };

/** Parses an Outpost topic; undefined for anything else (including invalid ids). */
export function parseTopic(topic: string): ParsedTopic | undefined {
  const parts = topic.split('/');
  if (parts.length !== 5 || parts[0] !== 'outpost' || parts[1] !== 'v1') return undefined;
  const [, , scope, name, leaf] = parts as [string, string, string, string, string];
  if (!isValidId(name)) return undefined;
  if (scope === 'dev' && (leaf === 'up' || leaf === 'cmd' || leaf === 'fw-up' || leaf === 'fw-down'))
    return { kind: leaf, device: name };
  if (scope === 'gw' && leaf === 'status') return { kind: 'gateway-status', gateway: name };
  return undefined;
}
