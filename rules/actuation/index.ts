/** rules/actuation: signed commands, ack tracking, leases with fencing, and the audit reader. */
export {
  Actuation,
  type ActuationJournal,
  type ActuationOptions,
  type ActuationStats,
  type CommandOutcome,
} from './actuation.js';
export { readDecisions, type AuditBlock, type AuditedDecision } from './audit.js';
export { ActuationUsageError, signCommand, type GatewaySigner, type SignedCommand } from './command.js';
export { DeliveryGuard, type InterlockSpec } from './delivery-guard.js';
export { type Claim, type Lease, LeaseTable } from './leases.js';
export { type Clock, type CommandTransport, systemClock } from './tracker.js';
