/**
 * What a check-in may store (issue 11, item 1): every value Postgres cannot hold, or that
 * makes no sense, is refused item by item with a reason naming the field, and the rest of the
 * check-in is stored. Text: no NUL character (Postgres text cannot hold one) and no lone
 * surrogate (it would be stored as U+FFFD, a different handle). Integers: within the int4
 * columns they go to. Timestamps: within a window around the collector clock.
 *
 * Refused: an account or a conversation with any bad string (the whole item, never a part of
 * a member list: members decide expected recipients), an account reported twice (the first
 * is kept); `software_version`, `outbox_backlog`,
 * `dead_letters` or `clock` alone (the stored value is kept).
 */
import type { AccountReport, CheckinRefusal, CheckinRequest, ConversationReport } from '../protocol/index.ts';

/** Largest value of a Postgres `integer` column. */
export const INT4_MAX = 2 ** 31 - 1;
/** A clock estimate measured longer ago than this, or later than `CLOCK_FUTURE_MS` ahead, is refused. */
export const CLOCK_PAST_MS = 30 * 24 * 3600_000;
export const CLOCK_FUTURE_MS = 24 * 3600_000;

// A high surrogate not followed by a low one, or a low one not preceded by a high one.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Why a string cannot be stored as text, or undefined when it can. */
export function textProblem(s: string): string | undefined {
  if (s.includes('\u0000')) return 'contains a NUL character';
  if (LONE_SURROGATE.test(s)) return 'contains a lone surrogate (not valid Unicode)';
  return undefined;
}

/** The first bad string in a (nested) value, as `[pointer, problem]`. */
function firstBadText(value: unknown, path: string): [string, string] | undefined {
  if (typeof value === 'string') {
    const p = textProblem(value);
    return p ? [path, p] : undefined;
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const bad = firstBadText(value[i], `${path}/${i}`);
      if (bad) return bad;
    }
    return undefined;
  }
  if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      const bad = firstBadText(v, `${path}/${k}`);
      if (bad) return bad;
    }
  }
  return undefined;
}

export interface ScreenedCheckin {
  accounts: AccountReport[];
  conversations: ConversationReport[];
  softwareVersion: string | undefined;
  outboxBacklog: number | undefined;
  deadLetters: number | undefined;
  clock: CheckinRequest['clock'];
  refused: CheckinRefusal[];
}

/** Pure: the parts of a (schema-valid) check-in that can be stored, and what was refused. */
export function screenCheckin(body: CheckinRequest, now: Date): ScreenedCheckin {
  const refused: CheckinRefusal[] = [];
  const refuse = (path: string, reason: string) => refused.push({ path, reason: `${path}${reason}` });
  const items = <T>(list: T[], name: string): T[] =>
    list.filter((item, i) => {
      const bad = firstBadText(item, `/${name}/${i}`);
      if (bad) refused.push({ path: `/${name}/${i}`, reason: `${bad[0]}: ${bad[1]}` });
      return !bad;
    });
  // An account reported twice would make the bulk upsert touch one row twice: keep the first.
  const firstAt = new Map<string, number>();
  const accounts = items(body.accounts, 'accounts').filter((a) => {
    const i = body.accounts.indexOf(a);
    const key = `${a.platform}\u0000${a.handle}`;
    const first = firstAt.get(key);
    if (first === undefined) {
      firstAt.set(key, i);
      return true;
    }
    refuse(`/accounts/${i}`, `: repeats /accounts/${first}`);
    return false;
  });
  const conversations = items(body.conversations, 'conversations');

  let softwareVersion: string | undefined = body.software_version;
  const versionProblem = textProblem(body.software_version);
  if (versionProblem) {
    refuse('/software_version', `: ${versionProblem}`);
    softwareVersion = undefined;
  }
  const int4 = (name: 'outbox_backlog' | 'dead_letters'): number | undefined => {
    const v = body[name];
    if (v <= INT4_MAX) return v;
    refuse(`/${name}`, `: ${v} is more than ${INT4_MAX}`);
    return undefined;
  };
  const outboxBacklog = int4('outbox_backlog');
  const deadLetters = int4('dead_letters');

  let clock = body.clock;
  if (clock) {
    const at = Date.parse(clock.measured_at);
    const nowMs = now.getTime();
    if (!Number.isFinite(at) || at < nowMs - CLOCK_PAST_MS || at > nowMs + CLOCK_FUTURE_MS) {
      refuse('/clock', '/measured_at: outside 30 days before to 1 day after the collector clock');
      clock = undefined;
    } else if (!Number.isFinite(clock.offset_ms) || !Number.isFinite(clock.rtt_ms)) {
      refuse('/clock', ': offset_ms and rtt_ms must be finite');
      clock = undefined;
    }
  }
  return { accounts, conversations, softwareVersion, outboxBacklog, deadLetters, clock, refused };
}
