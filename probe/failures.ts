/**
 * The one classifier from errors to the protocol's FailureCode vocabulary. Adapters
 * throw AdapterError with a code where they know it; everything else (fetch errors,
 * HTTP statuses, timeouts, browser deaths) is mapped here, so events never carry
 * free-text failure kinds.
 */
import { FAILURE_CODES, type FailureCode } from '../protocol/index.ts';
import { AdapterError } from './adapters/types.ts';

const CODES = new Set<string>(FAILURE_CODES);

export function isFailureCode(s: unknown): s is FailureCode {
  return typeof s === 'string' && CODES.has(s);
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_CLOSED',
]);

/** Maps an HTTP status a platform answered with onto a failure. */
export function classifyHttpStatus(status: number): FailureCode {
  if (status === 401) return 'login_required';
  if (status === 429) return 'rate_limited';
  if (status === 404) return 'conversation_not_found';
  if (status === 408 || status === 504) return 'send_timeout';
  if (status === 502 || status === 503) return 'connection_lost';
  return 'adapter_error';
}

export function classifyFailure(err: unknown): FailureCode {
  if (err instanceof AdapterError) return err.code;
  const e = err as {
    name?: unknown;
    code?: unknown;
    status?: unknown;
    message?: unknown;
    cause?: unknown;
  } | null;
  if (!e || typeof e !== 'object') return 'adapter_error';
  if (isFailureCode(e.code)) return e.code;
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return 'send_timeout';
  if (typeof e.status === 'number') return classifyHttpStatus(e.status);
  const msg = typeof e.message === 'string' ? e.message : '';
  if (/\b(banned|suspended|account (is )?(blocked|restricted|disabled))\b/i.test(msg))
    return 'account_banned';
  if (/\b(rate.?limit|too many requests)\b/i.test(msg)) return 'rate_limited';
  if (/\b(target closed|browser (has )?disconnected|browser crashed|session closed)\b/i.test(msg)) {
    return 'browser_crashed';
  }
  if (typeof e.code === 'string' && NETWORK_CODES.has(e.code)) return 'connection_lost';
  if (msg === 'fetch failed' || (e.name === 'TypeError' && /fetch|network/i.test(msg)))
    return 'connection_lost';
  if (e.cause && e.cause !== err) {
    const inner = classifyFailure(e.cause);
    if (inner !== 'adapter_error') return inner;
  }
  return 'adapter_error';
}

/** Failures that mean the account must rest (quarantine), not be driven harder. */
export function quarantineFor(code: FailureCode): 'banned' | 'rate_limited' | undefined {
  if (code === 'account_banned') return 'banned';
  if (code === 'rate_limited') return 'rate_limited';
  return undefined;
}
