/**
 * The probe's root logger: NDJSON to stdout (pretty on a TTY), with every secret a
 * probe holds redacted wherever it appears in a log object: credentials, passwords,
 * tokens, cookies, phone numbers, private keys.
 */
import pino, { type DestinationStream, type Logger } from 'pino';

const SECRET_KEYS = [
  'credentials',
  'password',
  'passwd',
  'token',
  'enrollment_token',
  'enrollmentToken',
  'authorization',
  'cookie',
  'cookies',
  'phone',
  'phone_number',
  'phoneNumber',
  'private_key_pem',
  'privateKey',
  'secret',
];

export const REDACT_PATHS = [
  ...SECRET_KEYS,
  ...SECRET_KEYS.map((k) => `*.${k}`),
  ...SECRET_KEYS.map((k) => `*.*.${k}`),
  'accounts[*].credentials',
  '*.accounts[*].credentials',
  'headers["x-sd-signature"]',
  '*.headers["x-sd-signature"]',
];

export function createProbeLogger(opts: { level?: string; destination?: DestinationStream } = {}): Logger {
  const options = {
    level: opts.level ?? 'info',
    base: { part: 'probe' },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
  };
  if (opts.destination) return pino(options, opts.destination);
  if (process.stdout.isTTY) {
    return pino({ ...options, transport: { target: 'pino-pretty', options: { colorize: true } } });
  }
  return pino(options);
}
