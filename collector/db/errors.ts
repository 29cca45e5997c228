/**
 * Postgres errors as both drivers raise them (drizzle wraps the driver's error as `cause`):
 * the SQLSTATE, and whether the data, not the collector or the database, was at fault.
 */

/** The SQLSTATE of a Postgres error (through drizzle's wrapper), or undefined. */
export function sqlState(err: unknown): string | undefined {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 5; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * Class 22 (data exception: a value out of range, an invalid text or timestamp) and class
 * 23 (integrity constraint violation: a CHECK, NOT NULL, foreign key or unique key).
 */
export function isDataError(err: unknown): boolean {
  const code = sqlState(err);
  return code !== undefined && (code.startsWith('22') || code.startsWith('23'));
}

/** Class 22 only: a value Postgres cannot take (what a query parameter can cause). */
export function isDataException(err: unknown): boolean {
  return sqlState(err)?.startsWith('22') ?? false;
}

/** What Postgres said about a data error, for a per-item refusal: SQLSTATE, column or constraint. */
export function describeDataError(err: unknown): string {
  let e = err as { code?: unknown; cause?: unknown; column?: unknown; constraint?: unknown } | undefined;
  for (let depth = 0; e && depth < 5 && typeof e.code !== 'string'; depth++) e = e.cause as typeof e;
  const parts = [`SQLSTATE ${sqlState(err) ?? 'unknown'}`];
  if (typeof e?.column === 'string') parts.push(`column ${e.column}`);
  if (typeof e?.constraint === 'string') parts.push(`constraint ${e.constraint}`);
  return parts.join(', ');
}

/** Socket errors that mean "the server is not reachable now", not "the request is wrong". */
const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
]);
/** How node-postgres words a lost or impossible connection (it sets no code on these). */
const UNREACHABLE_MESSAGES =
  /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Connection ended unexpectedly|the database system is (starting up|shutting down|in recovery mode)/i;

/**
 * The database server cannot be reached or is restarting: a connection refused, reset or
 * timed out, SQLSTATE class 08 (connection exception), or 57P01–57P03 (shut down, crashed,
 * not accepting connections yet). The request may be retried once it is back.
 */
export function isUnavailableError(err: unknown): boolean {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 5; depth++) {
    const { code, message } = e as { code?: unknown; message?: unknown };
    if (typeof code === 'string') {
      if (UNREACHABLE_CODES.has(code)) return true;
      if (code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03') return true;
    }
    if (typeof message === 'string' && UNREACHABLE_MESSAGES.test(message)) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}
