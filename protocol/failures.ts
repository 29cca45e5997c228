import { Type } from 'typebox';

/**
 * The fixed vocabulary of failures. An adapter's errors are mapped onto these by one
 * classifier (probe/failures.ts); events and outcomes carry the code, never free text.
 */
export const FAILURE_CODES = [
  'login_required', // the session is gone; an operator must log in again
  'rate_limited', // the platform slowed or refused us for sending too much
  'account_banned', // the platform banned or warned the account: quarantine it
  'send_timeout', // the send did not complete in time; unknown whether it left
  'notice_shown', // the sender saw an error or notice about the content
  'conversation_not_found', // the conversation does not exist or we are not a member
  'connection_lost', // the connection to the platform dropped
  'browser_crashed', // the browser behind a browser adapter died
  'adapter_error', // the adapter failed in a way not covered above
  // the probe itself did not send before the canary's deadline (a send backlog, its own
  // pacing or limits, or it was not running); nothing reached the platform
  'deadline_missed',
] as const;

export type FailureCode = (typeof FAILURE_CODES)[number];
export const FailureCode = Type.Enum(FAILURE_CODES);
