/** Schema validation outside fastify's route schemas, with messages that name the field. */
import type { TSchema } from 'typebox';
import { Compile } from 'typebox/compile';
import { FailedEvent, type ProbeEvent, ReceivedEvent, RejectedEvent, SentEvent } from '../protocol/index.ts';

export interface SchemaError {
  instancePath: string;
  message: string;
  keyword?: string;
  params?: unknown;
}

/**
 * Turns schema errors into one line: `/events/3/at: must match format "date-time"`.
 * An unexpected property is named as its own path.
 */
export function describeErrors(errors: readonly SchemaError[], prefix = ''): string {
  const lines: string[] = [];
  for (const e of errors) {
    // typebox reports an extra property twice (as `false` schema and as additionalProperties).
    if (e.keyword === 'boolean') continue;
    if (e.keyword === 'additionalProperties') {
      const names = (e.params as { additionalProperties?: string[] } | undefined)?.additionalProperties ?? [];
      for (const n of names) lines.push(`${prefix}${e.instancePath}/${n}: is not allowed`);
      continue;
    }
    lines.push(`${prefix}${e.instancePath || ''}: ${e.message}`);
  }
  const unique = [...new Set(lines)];
  const shown = unique.slice(0, 3).join('; ');
  return unique.length > 3 ? `${shown}; and ${unique.length - 3} more` : shown || `${prefix}: invalid`;
}

const eventValidators = {
  sent: Compile(SentEvent),
  rejected: Compile(RejectedEvent),
  failed: Compile(FailedEvent),
  received: Compile(ReceivedEvent),
} as const;

/**
 * What the database can hold, per event field. The protocol schema says what an event may
 * look like; these bounds say what the events table (and the outcome derived from it) can
 * store, so that no value of an event reaches Postgres only to be refused there:
 * - every string and object key, at any depth (the event ends up whole in `events.raw`,
 *   jsonb, and in text columns): no NUL (neither text nor jsonb hold U+0000), no lone
 *   UTF-16 surrogate (jsonb refuses `\ud800`; a text column would silently get U+FFFD);
 * - `at` (timestamptz, probe clock): a real instant (no leap second :60), not before
 *   2000-01-01 and at most a day ahead of the collector clock;
 * - `clock_offset_ms` (float8, but it shifts `at` into outcomes.received_at and
 *   outcomes.latency_ms, int4): at most a day either way;
 * - nesting at most `maxDepth` levels (jsonb has a depth limit; events are shallow).
 */
export const EVENT_BOUNDS = {
  earliestAtMs: Date.UTC(2000, 0, 1),
  futureSlackMs: 24 * 60 * 60 * 1000,
  maxClockOffsetMs: 24 * 60 * 60 * 1000,
  maxDepth: 8,
} as const;

/** A column's constraint on the value of one top-level event field. */
type ColumnRule =
  | { kind: 'timestamptz' }
  | { kind: 'number'; min: number; max: number; integer?: boolean; what: string };

/** int4, the range of the integer columns (latency_ms, counts). */
export const INT4 = { min: -2_147_483_648, max: 2_147_483_647 } as const;

const EVENT_COLUMNS: Record<string, ColumnRule> = {
  at: { kind: 'timestamptz' },
  clock_offset_ms: {
    kind: 'number',
    min: -EVENT_BOUNDS.maxClockOffsetMs,
    max: EVENT_BOUNDS.maxClockOffsetMs,
    what: 'a clock offset of at most a day either way',
  },
};

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Why the database could not hold this string, or null. */
export function unstorableString(s: string): string | null {
  if (s.includes('\u0000')) return 'contains NUL';
  if (LONE_SURROGATE.test(s)) return 'contains a lone UTF-16 surrogate';
  return null;
}

/** Why a timestamp is no sane instant for the collector at `nowMs`, or null. */
export function unstorableInstant(s: string, nowMs: number): string | null {
  const ms = Date.parse(s);
  if (Number.isNaN(ms)) return 'is not a real instant (e.g. a leap second)';
  if (ms < EVENT_BOUNDS.earliestAtMs) return 'is before 2000-01-01';
  if (ms > nowMs + EVENT_BOUNDS.futureSlackMs) return 'is more than a day ahead of the collector clock';
  return null;
}

function checkColumn(rule: ColumnRule, value: unknown, nowMs: number): string | null {
  if (rule.kind === 'timestamptz') return typeof value === 'string' ? unstorableInstant(value, nowMs) : null;
  if (typeof value !== 'number') return null;
  if (!Number.isFinite(value) || value < rule.min || value > rule.max) return `must be ${rule.what}`;
  if (rule.integer && !Number.isInteger(value)) return 'must be an integer';
  return null;
}

/**
 * The first value in `value` the database could not hold, as `<path>: <why>` (paths are
 * JSON pointers under `prefix`), or null. Walks every string, key and number at any depth.
 */
export function unstorableValue(
  value: unknown,
  prefix: string,
  nowMs: number,
  columns: Record<string, ColumnRule> = EVENT_COLUMNS,
): string | null {
  const walk = (v: unknown, path: string, depth: number): string | null => {
    if (typeof v === 'string') {
      const why = unstorableString(v);
      return why ? `${path}: ${why}` : null;
    }
    if (typeof v === 'number') return Number.isFinite(v) ? null : `${path}: must be a finite number`;
    if (typeof v !== 'object' || v === null) return null;
    if (depth >= EVENT_BOUNDS.maxDepth) return `${path}: nested deeper than ${EVENT_BOUNDS.maxDepth} levels`;
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        const why = walk(v[i], `${path}/${i}`, depth + 1);
        if (why) return why;
      }
      return null;
    }
    for (const [k, child] of Object.entries(v)) {
      const keyWhy = unstorableString(k);
      const name = keyWhy ? JSON.stringify(k).slice(1, -1) : k;
      if (keyWhy) return `${path}/${name}: the key ${keyWhy}`;
      const why = walk(child, `${path}/${name}`, depth + 1);
      if (why) return why;
      const rule = depth === 0 ? columns[k] : undefined;
      const colWhy = rule ? checkColumn(rule, child, nowMs) : null;
      if (colWhy) return `${path}/${name}: ${colWhy}`;
    }
    return null;
  };
  return walk(value, prefix, 0);
}

/**
 * Validates one event on its own; the reason names the field under `prefix`. First the
 * protocol schema, then what the database can hold (EVENT_BOUNDS) at collector time `now`.
 */
export function validateEvent(
  value: unknown,
  prefix: string,
  now: Date = new Date(),
): { ok: true; event: ProbeEvent } | { ok: false; reason: string } {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, reason: `${prefix}: must be an object` };
  }
  const type = (value as { type?: unknown }).type;
  if (typeof type !== 'string' || !Object.hasOwn(eventValidators, type)) {
    return { ok: false, reason: `${prefix}/type: must be one of sent, rejected, failed, received` };
  }
  const validator = eventValidators[type as keyof typeof eventValidators];
  if (!validator.Check(value)) {
    return { ok: false, reason: describeErrors(validator.Errors(value) as SchemaError[], prefix) };
  }
  const unstorable = unstorableValue(value, prefix, now.getTime());
  if (unstorable) return { ok: false, reason: unstorable };
  return { ok: true, event: value as ProbeEvent };
}

/** A compiled checker for any schema (admin bodies parsed by hand, e.g. text uploads). */
export function checker<T extends TSchema>(schema: T) {
  return Compile(schema);
}
