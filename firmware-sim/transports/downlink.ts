/**
 * What a device makes of one downlink frame from the gateway (any byte-stream
 * transport: serial, BLE): decode the COSE_Sign1, check the kid and the
 * gateway's signature when a key is given, and say whether it is a frame-ack
 * (which pending frame it settles) or a command. Commands are handed on even
 * when their signature fails: the actuators (firmware-sim/actuators.ts) check
 * them against every trusted gateway and answer a forgery with a refusal.
 */
import { AckStatus, decodeBody, decodeSign1, kidToDeviceId, sigStructure } from '../../protocols/index.js';
import { isSettingsPayload } from '../../protocols/settings.js';
import { verifySignature } from '../crypto.js';

export interface DownlinkTrust {
  /** The gateway's Ed25519 public key: frames not signed by it are refused. */
  readonly gatewayPublicKey?: Uint8Array | undefined;
  /** When set, frames must carry this kid. */
  readonly gatewayId?: string | undefined;
}

export type Downlink =
  | { kind: 'ack'; boot: number; seq: number; status: number; verified: boolean }
  /** An ack saying "not final, resend" (AckStatus.failed). */
  | { kind: 'retry' }
  /** A command, also when its signature fails (`verified` false): the device's actuators refuse and report it. */
  | { kind: 'command'; frame: Uint8Array; verified: boolean }
  | { kind: 'bad' };

export function checkDownlink(frame: Uint8Array, trust: DownlinkTrust): Downlink {
  const cose = decodeSign1(frame);
  if (!cose.ok) return { kind: 'bad' };
  const { kid, protectedBytes, payload, signature } = cose.value;
  // Settings messages (protocols/settings.ts) go on like commands: firmware-sim/settings.ts checks them.
  if (isSettingsPayload(payload)) return { kind: 'command', frame, verified: false };
  const body = decodeBody(payload);
  if (!body.ok) return { kind: 'bad' };
  const pub = trust.gatewayPublicKey;
  const fromGateway = trust.gatewayId === undefined || kidToDeviceId(kid) === trust.gatewayId;
  const verified =
    fromGateway && pub !== undefined && verifySignature(pub, sigStructure(protectedBytes, payload), signature);
  // Commands go on to the actuators whatever their signature: they check it against every
  // trusted gateway (siblings) and answer a forged one with a signed refusal.
  if (body.value.type === 'command') return { kind: 'command', frame, verified };
  if (!fromGateway || (pub !== undefined && !verified)) return { kind: 'bad' };
  if (body.value.type === 'frame-ack') {
    const { boot, seq, status } = body.value;
    if (status === AckStatus.failed) return { kind: 'retry' };
    return { kind: 'ack', boot, seq, status, verified: pub !== undefined };
  }
  return { kind: 'bad' };
}
