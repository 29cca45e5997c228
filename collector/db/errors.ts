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
