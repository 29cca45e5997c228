/**
 * Mapping what went wrong inside puppeteer onto the shared failure vocabulary. The
 * probe's own classifier sees only AdapterErrors from this adapter.
 */
import { TimeoutError } from 'puppeteer-core';
import type { FailureCode } from '../../../protocol/index.ts';
import { AdapterError } from '../types.ts';

const GONE =
  /Target closed|Session closed|Connection closed|Protocol error|browser has disconnected|Navigating frame was detached|Execution context was destroyed|detached Frame|Page crashed/i;

/** True when the error says the browser, page or its connection went away. */
export function isBrowserGone(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  return err.name === 'TargetCloseError' || GONE.test(err.message);
}

/**
 * Wrap an error as an AdapterError. `whileWaiting` is the code for a timeout in this
 * step (a send that never confirmed is `send_timeout`, a page that never loaded is
 * `connection_lost`); `crashed` says the engine saw the browser die meanwhile.
 */
export function classify(
  err: unknown,
  step: string,
  opts: { whileWaiting: FailureCode; crashed: boolean },
): AdapterError {
  if (err instanceof AdapterError) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (opts.crashed || isBrowserGone(err)) {
    return new AdapterError('browser_crashed', `${step}: the browser went away (${message})`, { cause: err });
  }
  if (/net::ERR_/.test(message)) {
    return new AdapterError('connection_lost', `${step}: cannot reach the web client (${message})`, {
      cause: err,
    });
  }
  if (err instanceof TimeoutError) {
    return new AdapterError(opts.whileWaiting, `${step}: timed out (${message})`, { cause: err });
  }
  return new AdapterError('adapter_error', `${step}: ${message}`, { cause: err });
}
