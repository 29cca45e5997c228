/** Sends a built request: to the collector through `app.inject` or real HTTP, to the testbed over HTTP. */
import type { FastifyInstance } from 'fastify';
import type { Answer, BuiltRequest } from './requests.ts';

export type Send = (req: BuiltRequest) => Promise<Answer>;

export function injectSender(app: FastifyInstance): Send {
  return async (req) => {
    const res = await app.inject({
      method: req.method,
      url: req.url,
      headers: req.headers,
      ...(req.body === undefined ? {} : { payload: req.body }),
    });
    return { status: res.statusCode, body: res.body };
  };
}

/**
 * Over HTTP. A stream (server-sent events) is answered as soon as its headers arrive; the
 * connection is then closed.
 */
export function httpSender(baseUrl: string, timeoutMs = 30_000): Send {
  return async (req) => {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(new Error(`no answer in ${timeoutMs} ms`)), timeoutMs);
    try {
      const res = await fetch(baseUrl + req.url, {
        method: req.method,
        headers: req.headers,
        ...(req.body === undefined ? {} : { body: req.body }),
        signal: abort.signal,
      });
      if ((res.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
        abort.abort();
        return { status: res.status, body: '' };
      }
      return { status: res.status, body: await res.text() };
    } finally {
      clearTimeout(timer);
    }
  };
}
