/**
 * Running a function inside the page. Functions are sent as source text; tsx (esbuild
 * `keepNames`) wraps named inner functions in `__name(...)`, which does not exist in
 * the page, so every call defines a local no-op `__name` first. The function must not
 * close over anything: pass what it needs as JSON-serialisable arguments.
 */
import type { Frame, Page } from 'puppeteer-core';

// biome-ignore lint/suspicious/noExplicitAny: in-page functions take any JSON arguments
type InPageFn<A extends any[], R> = (...args: A) => R;

export function inPageSource<A extends unknown[], R>(fn: InPageFn<A, R>, args: A): string {
  const json = args.map((a) => JSON.stringify(a)).join(', ');
  return `(() => { const __name = (f) => f; return (${fn.toString()})(${json}); })()`;
}

export async function evalIn<A extends unknown[], R>(
  page: Page | Frame,
  fn: InPageFn<A, R>,
  ...args: A
): Promise<Awaited<R>> {
  return (await page.evaluate(inPageSource(fn, args))) as Awaited<R>;
}

/**
 * Wait until `fn` returns a truthy value in the page, re-checking on every DOM mutation
 * (not a timer); resolves with that value. Rejects with puppeteer's TimeoutError.
 */
export async function waitIn<A extends unknown[], R>(
  page: Page,
  timeoutMs: number,
  fn: InPageFn<A, R>,
  ...args: A
): Promise<NonNullable<Awaited<R>>> {
  const handle = await page.waitForFunction(inPageSource(fn, args), {
    polling: 'mutation',
    timeout: timeoutMs,
  });
  try {
    return (await handle.jsonValue()) as NonNullable<Awaited<R>>;
  } finally {
    await handle.dispose().catch(() => undefined);
  }
}
