/** Maps every error onto { statusCode, code: SD_ERR_*, message }; 5xx bodies stay generic. */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isUnavailableError } from '../db/errors.ts';
import { type ErrorBody, type ErrorCode, RetryLaterError, SdError } from '../errors.ts';
import { describeErrors, type SchemaError } from '../validation.ts';

const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'SD_ERR_BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'SD_ERR_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'SD_ERR_BAD_REQUEST',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'SD_ERR_BAD_JSON',
  FST_ERR_CTP_INVALID_JSON_BODY: 'SD_ERR_BAD_JSON',
};

export function toErrorBody(err: FastifyError | SdError | Error): ErrorBody {
  if (err instanceof SdError) return { statusCode: err.statusCode, code: err.code, message: err.message };
  const fe = err as FastifyError;
  if (fe.validation) {
    const where = fe.validationContext === 'body' || !fe.validationContext ? '' : fe.validationContext;
    return {
      statusCode: 400,
      code: 'SD_ERR_VALIDATION',
      message: describeErrors(fe.validation as unknown as SchemaError[], where),
    };
  }
  const mapped = fe.code ? FASTIFY_CODES[fe.code] : undefined;
  if (mapped === 'SD_ERR_BODY_TOO_LARGE') {
    return { statusCode: 413, code: mapped, message: 'body: larger than this endpoint accepts' };
  }
  if (mapped)
    return { statusCode: mapped === 'SD_ERR_MEDIA_TYPE' ? 415 : 400, code: mapped, message: fe.message };
  if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) {
    return { statusCode: fe.statusCode, code: 'SD_ERR_BAD_REQUEST', message: fe.message };
  }
  return {
    statusCode: 500,
    code: 'SD_ERR_INTERNAL',
    message: 'internal error; the collector log has details',
  };
}

/** Sends an error answer: the body, `retry-after` when the client may retry, and one log line. */
/** Seconds a client is asked to wait when the database cannot be reached. */
export const DATABASE_RETRY_AFTER_S = 5;

export function sendError(
  cause: FastifyError | Error,
  req: FastifyRequest,
  reply: FastifyReply,
): FastifyReply {
  let err = cause;
  if (!(err instanceof SdError) && isUnavailableError(err)) {
    // Not the client's fault and not a bug: the database is away (restart, network). Say
    // so, and when to try again; probes retry with backoff, dashboards show the message.
    req.log.warn({ err }, 'database unreachable');
    err = new RetryLaterError(
      'SD_ERR_DATABASE_UNAVAILABLE',
      'the database cannot be reached right now; retry later',
      DATABASE_RETRY_AFTER_S,
    );
  }
  const body = toErrorBody(err);
  if (err instanceof RetryLaterError) {
    reply.header('retry-after', String(err.retryAfterSeconds));
    req.log.warn({ code: body.code, detail: body.message }, 'request deferred');
  } else if (body.statusCode >= 500) req.log.error({ err }, 'request failed');
  else req.log.info({ code: body.code, detail: body.message }, 'request refused');
  return reply.status(body.statusCode).send(body);
}

export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, req, reply) => sendError(err, req, reply));
  app.setNotFoundHandler((req, reply) => {
    const body: ErrorBody = {
      statusCode: 404,
      code: 'SD_ERR_NOT_FOUND',
      message: `no route ${req.method} ${req.url}`,
    };
    return reply.status(404).send(body);
  });
}
