/**
 * The probe's YAML config, read once and validated at start. Every problem is
 * reported with the field's path and its line in the file. See probe.example.yaml.
 *
 * Secrets may be given as `env:NAME` (enrollment_token and any credentials value):
 * the value is read from the environment at start, so the file can be shared.
 */
import { readFile, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import cron from 'node-cron';
import { type Static, Type } from 'typebox';
import { Value } from 'typebox/value';
import { LineCounter, parseDocument } from 'yaml';
import { Asn, PlatformName, Region } from '../protocol/index.ts';
import { adapterNames, isAdapterName } from './adapters/registry.ts';
import type { AccountConfig } from './adapters/types.ts';
import { ProxyConfigError, type ProxyRoute, parseProxyUrl, proxyRouteFor, proxyUrlText } from './proxy.ts';

export class ConfigError extends Error {
  readonly code = 'SD_ERR_PROBE_CONFIG';
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

const RateLimits = Type.Object(
  {
    per_minute: Type.Optional(Type.Integer({ minimum: 1 })),
    per_hour: Type.Optional(Type.Integer({ minimum: 1 })),
    per_day: Type.Optional(Type.Integer({ minimum: 1 })),
  },
  { additionalProperties: false },
);

const Pacing = Type.Object(
  {
    min_ms: Type.Optional(Type.Integer({ minimum: 0 })),
    max_ms: Type.Optional(Type.Integer({ minimum: 0 })),
  },
  { additionalProperties: false },
);

const QuietHoursSchema = Type.Object(
  {
    start: Type.String({ pattern: '^([01][0-9]|2[0-3]):[0-5][0-9]$' }),
    end: Type.String({ pattern: '^([01][0-9]|2[0-3]):[0-5][0-9]$' }),
    time_zone: Type.String({ minLength: 1, maxLength: 64 }),
  },
  { additionalProperties: false },
);

const AccountSchema = Type.Object(
  {
    platform: PlatformName,
    handle: Type.String({ minLength: 1, maxLength: 256 }),
    region: Region,
    credentials: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    settings: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    rate_limits: Type.Optional(RateLimits),
    pacing: Type.Optional(Pacing),
    /** Overrides the probe's quiet hours for this account; `null`: none. */
    quiet_hours: Type.Optional(Type.Union([QuietHoursSchema, Type.Null()])),
  },
  { additionalProperties: false },
);

const FileSchema = Type.Object(
  {
    collector_url: Type.Optional(Type.String({ minLength: 1 })),
    /** Several collector addresses, tried in order (an alternative to collector_url). */
    collector_urls: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { minItems: 1, maxItems: 8 })),
    /** Allow a plain http:// collector URL that is not loopback (the traffic can then be read and changed). */
    allow_insecure_transport: Type.Optional(Type.Boolean()),
    /**
     * The proxy for the traffic to the collector (only that): http://, https://, socks5:// or
     * socks5h:// URL, credentials allowed (or `env:NAME`); `direct` ignores HTTPS_PROXY & co.
     */
    proxy: Type.Optional(Type.String({ minLength: 1, maxLength: 2048 })),
    enrollment_token: Type.Optional(Type.String({ minLength: 1 })),
    data_dir: Type.String({ minLength: 1 }),
    country: Region,
    asn: Asn,
    label: Type.Optional(Type.String({ maxLength: 64 })),
    risks_accepted: Type.Optional(Type.Boolean()),
    checkin_cron: Type.Optional(Type.String({ minLength: 1 })),
    log_level: Type.Optional(
      Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l))),
    ),
    pacing: Type.Optional(Pacing),
    rate_limits: Type.Optional(RateLimits),
    quiet_hours: Type.Optional(QuietHoursSchema),
    budget: Type.Optional(
      Type.Object({ per_day: Type.Optional(Type.Integer({ minimum: 1 })) }, { additionalProperties: false }),
    ),
    quarantine: Type.Optional(
      Type.Object(
        {
          banned_hours: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
          rate_limited_minutes: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
        },
        { additionalProperties: false },
      ),
    ),
    accounts: Type.Array(AccountSchema, { maxItems: 200 }),
  },
  { additionalProperties: false },
);
type FileConfig = Static<typeof FileSchema>;

export interface RateLimitConfig {
  perMinute: number;
  perHour: number;
  perDay: number;
}

export interface PacingConfig {
  /** Randomised pause between two sends of one account, ms. */
  minMs: number;
  maxMs: number;
}

/** Local times (minutes after midnight) in an IANA time zone between which an account does not send. */
export interface QuietHoursConfig {
  startMin: number;
  endMin: number;
  timeZone: string;
}

export interface ProbeAccountConfig extends AccountConfig {
  rateLimits: RateLimitConfig;
  pacing: PacingConfig;
  quietHours?: QuietHoursConfig;
}

export interface ProbeConfig {
  /** The first of collectorUrls. */
  collectorUrl: string;
  /** Every collector address, tried in order when one does not answer. */
  collectorUrls: string[];
  /**
   * How each collector address is reached (a proxy or directly), from the config's `proxy`
   * field or the environment (probe/proxy.ts). Holds proxy credentials: show only
   * `describeRoute`'s redacted form.
   */
  proxyRoutes: ProxyRoute[];
  /** One-time token for the first run; not needed once the data folder holds an identity. */
  enrollmentToken?: string;
  /** Absolute. */
  dataDir: string;
  country: string;
  asn: number;
  label?: string;
  /** The operator read docs/operators.md and accepts the risks (needed to register). */
  risksAccepted: boolean;
  /** node-cron expression for check-ins (seconds field optional). */
  checkinCron: string;
  logLevel: string;
  /** Messages per day across all accounts. */
  budgetPerDay?: number;
  quarantine: { bannedMs: number; rateLimitedMs: number };
  accounts: ProbeAccountConfig[];
}

export const DEFAULTS = {
  checkinCron: '* * * * *',
  pacing: { minMs: 2000, maxMs: 8000 },
  rateLimits: { perMinute: 6, perHour: 120, perDay: 1000 },
  quarantine: { bannedHours: 48, rateLimitedMinutes: 30 },
} as const;

/** The largest probe config read: 200 accounts with their settings fit in far less. */
export const MAX_PROBE_CONFIG_BYTES = 1024 * 1024;

/** Reads and validates a config file. Relative `data_dir` is relative to the file. */
export async function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): Promise<ProbeConfig> {
  let text: string;
  try {
    const { size } = await stat(file);
    if (size > MAX_PROBE_CONFIG_BYTES) {
      throw new Error(
        `${size} bytes, more than the ${MAX_PROBE_CONFIG_BYTES / 1024} KiB a probe config may have`,
      );
    }
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read probe config ${file}: ${(err as Error).message}`);
  }
  return parseConfig(text, { file, baseDir: dirname(resolve(file)), env });
}

export function parseConfig(
  text: string,
  opts: { file?: string; baseDir?: string; env?: NodeJS.ProcessEnv } = {},
): ProbeConfig {
  const where = opts.file ?? 'probe config';
  if (Buffer.byteLength(text) > MAX_PROBE_CONFIG_BYTES) {
    throw new ConfigError(
      `${where}: more than the ${MAX_PROBE_CONFIG_BYTES / 1024} KiB a probe config may have`,
    );
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const { line, col } = lineCounter.linePos(e.pos[0]);
    throw new ConfigError(`${where}:${line}:${col}: ${e.message.split('\n')[0]}`);
  }
  let raw: unknown;
  try {
    // An alias that names no anchor, or aliases that multiply (a "billion laughs"), throw here.
    raw = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    throw new ConfigError(`${where}: ${(err as Error).message.split('\n')[0]}`);
  }

  const lineOf = (path: (string | number)[]): string => {
    for (let n = path.length; n >= 0; n--) {
      const node = doc.getIn(path.slice(0, n), true) as { range?: [number, number] } | undefined;
      const offset = node?.range?.[0];
      if (offset !== undefined) return ` (line ${lineCounter.linePos(offset).line})`;
    }
    return '';
  };
  const fail = (path: (string | number)[], message: string): never => {
    throw new ConfigError(`${where}: ${fieldName(path)}${lineOf(path)}: ${message}`);
  };

  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ConfigError(
      `${where}: expected a mapping of settings (collector_url, data_dir, accounts, ...)`,
    );
  }
  if (!Value.Check(FileSchema, raw)) {
    const errors = [...Value.Errors(FileSchema, raw)];
    // Prefer the most specific error (deepest path), and name unknown fields.
    const extra = errors.find((e) => e.keyword === 'additionalProperties');
    if (extra) {
      const names = (extra.params as { additionalProperties?: string[] }).additionalProperties ?? [];
      const path = pointerToPath(extra.instancePath);
      fail([...path, names[0] ?? ''], `unknown field "${names.join('", "')}"`);
    }
    const required = errors.find((e) => e.keyword === 'required');
    if (required) {
      const missing = (required.params as { requiredProperties?: string[] }).requiredProperties ?? [];
      fail(pointerToPath(required.instancePath), `missing required field "${missing.join('", "')}"`);
    }
    const e = errors
      .filter((x) => x.keyword !== 'boolean')
      .sort((a, b) => b.instancePath.length - a.instancePath.length)[0];
    if (e) fail(pointerToPath(e.instancePath), e.message);
    throw new ConfigError(`${where}: invalid config`);
  }
  const c = raw as FileConfig;

  if (c.collector_url !== undefined && c.collector_urls !== undefined)
    fail(['collector_urls'], 'give collector_url or collector_urls, not both');
  if (c.collector_url === undefined && c.collector_urls === undefined)
    fail([], 'missing required field "collector_url" (or "collector_urls")');
  const urlsIn: [string, (string | number)[]][] =
    c.collector_urls !== undefined
      ? c.collector_urls.map((u, i) => [u, ['collector_urls', i]])
      : [[c.collector_url as string, ['collector_url']]];
  const collectorUrls = urlsIn.map(([text, path]) => {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      return fail(path, `not a URL: "${text}"`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') fail(path, 'must be an http(s) URL');
    if (url.protocol === 'http:' && !isLoopbackHost(url.hostname) && c.allow_insecure_transport !== true)
      fail(
        path,
        `plain http:// to ${url.hostname} can be read and changed on the way; use https://, ` +
          'or set allow_insecure_transport: true if you accept that',
      );
    return url.toString().replace(/\/$/, '');
  });
  const checkinCron = c.checkin_cron ?? DEFAULTS.checkinCron;
  if (!cron.validate(checkinCron)) fail(['checkin_cron'], `not a valid cron expression: "${checkinCron}"`);

  const env = opts.env ?? process.env;
  const secret = (value: unknown, path: (string | number)[]): unknown => {
    if (typeof value !== 'string' || !value.startsWith('env:')) return value;
    const name = value.slice(4);
    const v = env[name];
    if (v === undefined || v === '') return fail(path, `environment variable ${name} is not set`);
    return v;
  };

  // The proxy URL may hold credentials: no message quotes it.
  let proxy: string | undefined;
  if (c.proxy !== undefined) {
    const value = secret(c.proxy, ['proxy']) as string;
    if (value === 'direct') proxy = 'direct';
    else {
      const parsed = parseProxyUrl(value);
      if (typeof parsed === 'string') fail(['proxy'], `${parsed}, or "direct"`);
      else proxy = proxyUrlText(parsed);
    }
  }
  const proxyRoutes = collectorUrls.map((u) => {
    try {
      return proxyRouteFor(u, proxy, env);
    } catch (err) {
      if (!(err instanceof ProxyConfigError)) throw err;
      throw new ConfigError(
        `${where}: environment variable ${err.where}: ${err.message} ` +
          '(fix or unset it, or set proxy: in the config, e.g. proxy: direct)',
      );
    }
  });

  const pacingOf = (p: FileConfig['pacing'], base: PacingConfig, path: (string | number)[]): PacingConfig => {
    const out = { minMs: p?.min_ms ?? base.minMs, maxMs: p?.max_ms ?? base.maxMs };
    if (out.minMs > out.maxMs)
      fail([...path, 'min_ms'], `min_ms (${out.minMs}) is above max_ms (${out.maxMs})`);
    return out;
  };
  const limitsOf = (r: FileConfig['rate_limits'], base: RateLimitConfig): RateLimitConfig => ({
    perMinute: r?.per_minute ?? base.perMinute,
    perHour: r?.per_hour ?? base.perHour,
    perDay: r?.per_day ?? base.perDay,
  });
  const quietOf = (
    q: NonNullable<FileConfig['quiet_hours']>,
    path: (string | number)[],
  ): QuietHoursConfig => {
    try {
      new Intl.DateTimeFormat('en-GB', { timeZone: q.time_zone });
    } catch {
      fail([...path, 'time_zone'], `unknown time zone "${q.time_zone}" (an IANA name, e.g. Asia/Shanghai)`);
    }
    const min = (t: string) => Number(t.slice(0, 2)) * 60 + Number(t.slice(3, 5));
    if (q.start === q.end) fail([...path, 'end'], 'start and end are the same time');
    return { startMin: min(q.start), endMin: min(q.end), timeZone: q.time_zone };
  };
  const quiet = c.quiet_hours ? quietOf(c.quiet_hours, ['quiet_hours']) : undefined;
  const pacing = pacingOf(c.pacing, DEFAULTS.pacing, ['pacing']);
  const rateLimits = limitsOf(c.rate_limits, DEFAULTS.rateLimits);

  const seen = new Set<string>();
  const accounts = c.accounts.map((a, i): ProbeAccountConfig => {
    if (!isAdapterName(a.platform)) {
      fail(
        ['accounts', i, 'platform'],
        `unknown adapter "${a.platform}" (known: ${adapterNames().join(', ')})`,
      );
    }
    const key = `${a.platform}/${a.handle}`;
    if (seen.has(key)) fail(['accounts', i, 'handle'], `account ${key} is listed twice`);
    seen.add(key);
    const credentials: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(a.credentials ?? {})) {
      credentials[k] = secret(v, ['accounts', i, 'credentials', k]);
    }
    const quietHours =
      a.quiet_hours === undefined
        ? quiet
        : a.quiet_hours === null
          ? undefined
          : quietOf(a.quiet_hours, ['accounts', i, 'quiet_hours']);
    return {
      platform: a.platform,
      handle: a.handle,
      region: a.region,
      credentials,
      settings: a.settings ?? {},
      rateLimits: limitsOf(a.rate_limits, rateLimits),
      pacing: pacingOf(a.pacing, pacing, ['accounts', i, 'pacing']),
      ...(quietHours ? { quietHours } : {}),
    };
  });

  const token =
    c.enrollment_token === undefined ? undefined : secret(c.enrollment_token, ['enrollment_token']);
  return {
    collectorUrl: collectorUrls[0]!,
    collectorUrls,
    proxyRoutes,
    enrollmentToken: token as string | undefined,
    dataDir: isAbsolute(c.data_dir) ? c.data_dir : resolve(opts.baseDir ?? process.cwd(), c.data_dir),
    country: c.country,
    asn: c.asn,
    label: c.label,
    risksAccepted: c.risks_accepted === true,
    checkinCron,
    logLevel: c.log_level ?? 'info',
    budgetPerDay: c.budget?.per_day,
    quarantine: {
      bannedMs: (c.quarantine?.banned_hours ?? DEFAULTS.quarantine.bannedHours) * 3600_000,
      rateLimitedMs: (c.quarantine?.rate_limited_minutes ?? DEFAULTS.quarantine.rateLimitedMinutes) * 60_000,
    },
    accounts,
  };
}

/** localhost, 127.0.0.0/8 and ::1: traffic that never leaves the machine. */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h.endsWith('.localhost') || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

function pointerToPath(pointer: string): (string | number)[] {
  if (!pointer) return [];
  return pointer
    .slice(1)
    .split('/')
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((p) => (/^\d+$/.test(p) ? Number(p) : p));
}

/** ['accounts', 0, 'region'] → "accounts[0].region" */
export function fieldName(path: (string | number)[]): string {
  if (path.length === 0) return '(top level)';
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

/**
 * The folder an account's adapter keeps its state in (browser session, stream cursor),
 * under the probe's data folder. The agent and `silentdrop probe login` both use it.
 */
export function accountStateDir(dataDir: string, platform: string, handle: string): string {
  return join(dataDir, 'accounts', platform, encodeURIComponent(handle));
}
