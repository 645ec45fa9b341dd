/** rules/actuation: signed commands, ack tracking, leases with fencing, and the audit reader. */
export {
  Actuation,
  type ActuationJournal,
  type ActuationOptions,
  type CommandOutcome,
  RESENT_REASON,
} from './actuation.js';
export { readDecisions, type AuditBlock, type AuditedDecision } from './audit.js';
export { type CommandTransport, systemClock } from './tracker.js';
