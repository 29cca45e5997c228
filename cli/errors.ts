/**
 * How the CLI reports an error to a person: one clear line, no stack trace unless
 * SILENTDROP_DEBUG is set. Errors that carry a stable `code` (SD_ERR_*) show it.
 */
export class CliError extends Error {
  constructor(
    message: string,
    public readonly code = 'SD_ERR_CLI',
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export function reportCliError(err: unknown): void {
  const e = err as { code?: unknown; message?: unknown; stack?: unknown };
  const code = typeof e?.code === 'string' ? `${e.code}: ` : '';
  const message = typeof e?.message === 'string' ? e.message : String(err);
  console.error(`silentdrop: ${code}${message}`);
  if (process.env.SILENTDROP_DEBUG && typeof e?.stack === 'string') console.error(e.stack);
}
