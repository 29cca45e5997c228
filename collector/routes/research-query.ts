/**
 * Query strings of the research API → repository filters, and the opaque keyset cursors.
 * A cursor is base64url JSON of the last row's key; it is validated like any input.
 */
import type { Db, Queryable } from '../db/open.ts';
import type { OutcomeFilter } from '../db/research-filters.ts';
import type { FindingFilter, FindingKey } from '../db/research-findings.ts';
import type { OutcomeKey } from '../db/research-outcomes.ts';
import { isStatementTimeout, withStatementTimeout } from '../db/research-timeout.ts';
import { RetryLaterError, SdError } from '../errors.ts';
import { unstorableString } from '../validation.ts';

/** Runs research reads under the statement timeout; the research routes' only way to the database. */
export type ResearchRead = <T>(read: (q: Queryable) => Promise<T>) => Promise<T>;

/** Seconds a client is asked to wait after SD_ERR_QUERY_TIMEOUT. */
export const QUERY_TIMEOUT_RETRY_SECONDS = 30;

/** A statement stopped by its timeout → 503 SD_ERR_QUERY_TIMEOUT with retry-after; other errors as they are. */
export function queryTimeoutAnswer(err: unknown, timeoutMs: number): unknown {
  if (!isStatementTimeout(err)) return err;
  return new RetryLaterError(
    'SD_ERR_QUERY_TIMEOUT',
    `query: ran longer than ${timeoutMs / 1000} s and was stopped; narrow it (campaign, terms, from/to) ` +
      'or retry later',
    QUERY_TIMEOUT_RETRY_SECONDS,
  );
}

export function researchReader(db: Db, timeoutMs: number): ResearchRead {
  return async (read) => {
    try {
      return await withStatementTimeout(db, timeoutMs, read);
    } catch (err) {
      throw queryTimeoutAnswer(err, timeoutMs);
    }
  };
}

export interface FilterQuery {
  campaign?: string | undefined;
  platform?: string | undefined;
  terms?: string | undefined;
  kind?: 'test' | 'control' | undefined;
  status?: string | undefined;
  verdict?: string | undefined;
  sender_region?: string | undefined;
  recipient_region?: string | undefined;
  conversation_kind?: 'direct' | 'group' | undefined;
  probe?: string | undefined;
  from?: string | undefined;
  to?: string | undefined;
}

const list = (v: string | undefined) => (v ? [...new Set(v.split(','))] : undefined);
/** The schema checked the form (QUERY_TIMESTAMP_PATTERN); this refuses what still is no instant. */
function date(v: string | undefined, name: 'from' | 'to'): Date | undefined {
  if (!v) return undefined;
  const d = new Date(v);
  if (Number.isNaN(d.getTime()))
    throw new SdError('SD_ERR_VALIDATION', `querystring/${name}: not a real instant`);
  return d;
}

/** `terms` is the JSON array of a term set (`terms_key` in responses). */
export function parseTermsKey(raw: string | undefined): string[] | undefined {
  if (raw === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new SdError(
      'SD_ERR_VALIDATION',
      'querystring/terms: must be a JSON array of strings (a terms_key)',
    );
  }
  if (!Array.isArray(parsed) || parsed.length === 0 || !parsed.every((t) => typeof t === 'string')) {
    throw new SdError('SD_ERR_VALIDATION', 'querystring/terms: must be a non-empty JSON array of strings');
  }
  for (const [i, t] of (parsed as string[]).entries()) {
    const why = unstorableString(t);
    if (why) throw new SdError('SD_ERR_VALIDATION', `querystring/terms/${i}: ${why}`);
  }
  return parsed as string[];
}

export function toOutcomeFilter(q: FilterQuery): OutcomeFilter {
  const from = date(q.from, 'from');
  const to = date(q.to, 'to');
  if (from && to && to <= from) throw new SdError('SD_ERR_VALIDATION', 'querystring/to: must be after from');
  return {
    campaign: q.campaign,
    platform: q.platform,
    termSet: parseTermsKey(q.terms),
    kind: q.kind,
    statuses: list(q.status),
    verdicts: list(q.verdict),
    senderRegions: list(q.sender_region),
    recipientRegions: list(q.recipient_region),
    conversationKind: q.conversation_kind,
    probe: q.probe,
    from,
    to,
  };
}

export function toFindingFilter(q: Omit<FilterQuery, 'kind' | 'status' | 'probe'>): FindingFilter {
  const f = toOutcomeFilter(q);
  return {
    campaign: f.campaign,
    platform: f.platform,
    termSet: f.termSet,
    verdicts: f.verdicts,
    senderRegions: f.senderRegions,
    recipientRegions: f.recipientRegions,
    conversationKind: f.conversationKind,
    from: f.from,
    to: f.to,
  };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const MICROS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
/** A cursor's instant as this API writes it (isoMicros), and a real one (no 2026-02-30, no :60). */
const micros = (v: unknown): v is string =>
  typeof v === 'string' &&
  MICROS.test(v) &&
  v.slice(0, 4) >= '1970' &&
  !Number.isNaN(Date.parse(v)) &&
  new Date(Date.parse(v)).toISOString().slice(0, 19) === v.slice(0, 19);

function encode(value: unknown): string {
  return Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
}

function decode(cursor: string): Record<string, unknown> {
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // fall through to the refusal below
  }
  throw new SdError('SD_ERR_VALIDATION', 'querystring/cursor: not a cursor this API issued');
}

export function encodeOutcomeCursor(key: OutcomeKey, order: 'asc' | 'desc'): string {
  return encode({ v: 1, t: key.sendAt, c: key.canaryId, r: key.recipientId, o: order });
}

export function decodeOutcomeCursor(cursor: string, order: 'asc' | 'desc'): OutcomeKey {
  const v = decode(cursor);
  const ok =
    v.v === 1 &&
    micros(v.t) &&
    typeof v.c === 'string' &&
    UUID.test(v.c) &&
    typeof v.r === 'string' &&
    UUID.test(v.r);
  if (!ok) throw new SdError('SD_ERR_VALIDATION', 'querystring/cursor: not a cursor this API issued');
  if (v.o !== order)
    throw new SdError('SD_ERR_VALIDATION', `querystring/cursor: was issued for order=${String(v.o)}`);
  return { sendAt: v.t as string, canaryId: v.c as string, recipientId: v.r as string };
}

export function encodeFindingCursor(key: FindingKey): string {
  return encode({ v: 1, w: key.windowStart, i: key.id });
}

export function decodeFindingCursor(cursor: string): FindingKey {
  const v = decode(cursor);
  if (v.v !== 1 || !micros(v.w) || typeof v.i !== 'string' || !UUID.test(v.i)) {
    throw new SdError('SD_ERR_VALIDATION', 'querystring/cursor: not a cursor this API issued');
  }
  return { windowStart: v.w, id: v.i };
}
