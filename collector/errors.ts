/**
 * Stable error codes (SD_ERR_*), documented in docs/errors.md. A client can rely on the
 * code; the message is for people. 5xx bodies are generic; the log carries the detail.
 */
export const ERRORS = {
  SD_ERR_VALIDATION: 400,
  SD_ERR_BAD_JSON: 400,
  SD_ERR_BAD_REQUEST: 400,
  SD_ERR_QUERY_VALUE: 400,
  SD_ERR_AUTH_MISSING: 401,
  SD_ERR_AUTH_STALE: 401,
  SD_ERR_AUTH_UNKNOWN_PROBE: 401,
  SD_ERR_AUTH_BAD_SIGNATURE: 401,
  SD_ERR_AUTH_REPLAY: 401,
  SD_ERR_ENROLLMENT_TOKEN: 401,
  SD_ERR_ADMIN_TOKEN: 401,
  SD_ERR_FOREIGN_ACCOUNT: 403,
  SD_ERR_PROBE_REVOKED: 403,
  SD_ERR_NOT_FOUND: 404,
  SD_ERR_CONFLICT: 409,
  SD_ERR_BODY_TOO_LARGE: 413,
  SD_ERR_MEDIA_TYPE: 415,
  SD_ERR_RATE_LIMITED: 429,
  SD_ERR_INTERNAL: 500,
  SD_ERR_QUERY_TIMEOUT: 503,
  SD_ERR_BUSY: 503,
  SD_ERR_DATABASE_UNAVAILABLE: 503,
  SD_ERR_CONFIG: 500,
  SD_ERR_DATABASE: 500,
} as const;

export type ErrorCode = keyof typeof ERRORS;

export class SdError extends Error {
  readonly statusCode: number;
  constructor(
    public readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'SdError';
    this.statusCode = ERRORS[code];
  }
}

/** An error the client may retry after `retryAfterSeconds` (sent as `retry-after`). */
export class RetryLaterError extends SdError {
  constructor(
    code: ErrorCode,
    message: string,
    public readonly retryAfterSeconds: number,
  ) {
    super(code, message);
  }
}

/** The body of every error response. */
export interface ErrorBody {
  statusCode: number;
  code: ErrorCode;
  message: string;
}
