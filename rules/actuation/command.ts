/**
 * Signed downlink commands (DESIGN "Downlink command / ack"): the body
 * {id, target, actuator, value, expires, issued, fence?} in a COSE_Sign1 whose kid is the
 * gateway id, signed with the gateway's Ed25519 key. Pure: ids and clocks come from the caller.
 */
import { type CommandBody, signBody, type SignFn, toHex } from '../../protocols/index.js';
import type { CommandIntent } from '../decision.js';

export const COMMAND_ID_BYTES = 16;

export interface GatewaySigner {
  readonly gatewayId: string;
  readonly sign: SignFn;
}

export interface SignedCommand {
  readonly body: CommandBody;
  /** The COSE_Sign1 bytes sent to the device (the same bytes on every retry). */
  readonly frame: Uint8Array;
  /** Hex of the command id (the key acks are matched on). */
  readonly key: string;
}

class ActuationUsageError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ActuationUsageError';
  }
}

/** Builds and signs the command for an intent, issued at `issued` and valid for its ttl. */
export function signCommand(
  intent: CommandIntent,
  at: { id: Uint8Array; issued: number; fence?: number },
  signer: GatewaySigner,
): SignedCommand {
  if (!(Number.isSafeInteger(intent.ttlMs) && intent.ttlMs > 0))
    throw new ActuationUsageError('actuation/bad-ttl', `ttlMs must be a positive integer, got ${intent.ttlMs}`);
  if (at.id.length < 4 || at.id.length > 32)
    throw new ActuationUsageError('actuation/bad-id', 'command id must be 4..32 bytes');
  const body: CommandBody = {
    type: 'command',
    id: at.id,
    target: intent.device,
    actuator: intent.actuator,
    value: intent.value,
    issued: at.issued,
    expires: at.issued + intent.ttlMs,
    ...(at.fence !== undefined && { fence: at.fence }),
  };
  return { body, frame: signBody(body, signer.gatewayId, signer.sign), key: toHex(at.id) };
}
