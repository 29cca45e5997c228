/**
 * The collector's root pino logger. Operators are at risk: requests are logged without
 * remote address, port or host, and secrets are redacted. NDJSON unless stdout is a TTY.
 */
import { type DestinationStream, type Logger, pino } from 'pino';

export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers["x-sd-signature"]',
  'headers.authorization',
  'enrollment_token',
  '*.enrollment_token',
  'token',
  '*.token',
  'adminToken',
  'hashKey',
];

/** Request/response serializers that never carry an IP address. */
export const serializers = {
  req(req: { method?: string; url?: string; id?: string }) {
    return { method: req.method, url: req.url, id: req.id };
  },
  res(res: { statusCode?: number }) {
    return { statusCode: res.statusCode };
  },
};

export function createLogger(
  options: { level?: string; destination?: DestinationStream; pretty?: boolean } = {},
): Logger {
  const base = {
    level: options.level ?? 'info',
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    serializers,
    base: { service: 'collector' },
  };
  if (options.destination) return pino(base, options.destination);
  if (options.pretty ?? process.stdout.isTTY) {
    return pino({ ...base, transport: { target: 'pino-pretty', options: { colorize: true } } });
  }
  return pino(base);
}
