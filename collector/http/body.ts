/**
 * Body parsers that keep the raw bytes: signatures cover the exact body, so a route that
 * sets `request.verifyBody` (the probe API, in onRequest) has the bytes verified before
 * they are parsed; one that fails is refused without JSON.parse ever seeing it. A body
 * that is not JSON is recorded as `request.bodyError` and thrown after authentication,
 * so an unauthenticated client learns nothing from it.
 */
import type { FastifyInstance } from 'fastify';
import { SdError } from '../errors.ts';

declare module 'fastify' {
  interface FastifyRequest {
    rawBody: Buffer | null;
    bodyError: SdError | null;
    /** Set before the body is read: checks the raw bytes (throws to refuse) before parsing. */
    verifyBody: ((body: Buffer) => void) | null;
  }
}

export function registerBodyParsers(app: FastifyInstance): void {
  app.decorateRequest('rawBody', null);
  app.decorateRequest('bodyError', null);
  app.decorateRequest('verifyBody', null);
  app.removeContentTypeParser(['application/json', 'text/plain']);
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (req, body, done) => {
    const buf = body as Buffer;
    req.rawBody = buf;
    try {
      req.verifyBody?.(buf);
    } catch (err) {
      done(err as Error, undefined);
      return;
    }
    if (buf.length === 0) {
      req.bodyError = new SdError('SD_ERR_BAD_JSON', 'body: empty; expected a JSON document');
      done(null, undefined);
      return;
    }
    try {
      done(null, JSON.parse(buf.toString('utf8')));
    } catch (err) {
      req.bodyError = new SdError('SD_ERR_BAD_JSON', `body: not valid JSON (${(err as Error).message})`);
      done(null, undefined);
    }
  });
  app.addContentTypeParser('text/plain', { parseAs: 'buffer' }, (req, body, done) => {
    const buf = body as Buffer;
    req.rawBody = buf;
    try {
      req.verifyBody?.(buf);
    } catch (err) {
      done(err as Error, undefined);
      return;
    }
    try {
      done(null, new TextDecoder('utf-8', { fatal: true }).decode(buf));
    } catch {
      req.bodyError = new SdError('SD_ERR_BAD_REQUEST', 'body: not valid UTF-8 text');
      done(null, undefined);
    }
  });
}

/** preValidation hook: throws the parse error recorded by the body parser, if any. */
export async function throwBodyError(req: { bodyError: SdError | null }): Promise<void> {
  if (req.bodyError) throw req.bodyError;
}
