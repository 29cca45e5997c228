/** Sends a built request: to the collector through `app.inject` or real HTTP, to the testbed over HTTP. */
import type { FastifyInstance } from 'fastify';
import { Agent, fetch } from 'undici';
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
export function httpSender(baseUrl: string, timeoutMs = 30_000, tally?: TransportTally): Send {
  // Idle connections are let go after 10 s, long before the servers' keep-alive timeouts
  // (fastify: 72 s), so a request is never written into a socket the server is closing.
  const dispatcher = new Agent({ keepAliveTimeout: 10_000, keepAliveMaxTimeout: 10_000 });
  const once = async (req: BuiltRequest): Promise<Answer> => {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(new Error(`no answer in ${timeoutMs} ms`)), timeoutMs);
    try {
      const res = await fetch(baseUrl + req.url, {
        method: req.method,
        headers: req.headers,
        ...(req.body === undefined ? {} : { body: req.body }),
        signal: abort.signal,
        dispatcher,
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
  return async (req) => {
    try {
      return await once(req);
    } catch (err) {
      // The server closed a kept-alive connection as this request went out ("other side
      // closed" before any answer): the request is sent once more on a fresh connection and
      // counted, so a run shows how often it happened. Anything else is no answer.
      if ((err as { cause?: { code?: string } }).cause?.code !== 'UND_ERR_SOCKET') throw err;
      if (tally) tally.resentAfterClosedConnection++;
      return once(req);
    }
  };
}

/** What the HTTP sender had to do about the transport, for the run's summary. */
export interface TransportTally {
  resentAfterClosedConnection: number;
}
