/**
 * What an error shown to the sender means when it is not about the content (the
 * client's send-error line, a toast): a rate limit, a lost session, a missing
 * conversation, or otherwise a connection problem. Content notices are told apart by
 * each recipe from where the client shows them, not from their words.
 */
import type { FailureCode } from '../../../../protocol/index.ts';

const RATE = /rate.?limit|too many|slow down|try again later|频繁/i;
const LOGIN =
  /log ?in (again|first)|session (has )?expired|not logged in|login required|unauthori[sz]ed|请重新登录/i;
const NOT_FOUND = /no conversation|conversation not found|no such conversation/i;

export function failureFromText(text: string): FailureCode {
  if (RATE.test(text)) return 'rate_limited';
  if (LOGIN.test(text)) return 'login_required';
  if (NOT_FOUND.test(text)) return 'conversation_not_found';
  return 'connection_lost';
}
