/**
 * Outcome rows for the research API, read in keyset order, never OFFSET: (send time,
 * canary id, recipient id), for pages people read; each page is cheap with an index on
 * canaries (send_at, id), at any depth. Keys never change once a row exists, so a reader
 * paging while probes report sees each existing row exactly once. (The bulk export reads
 * in the same order: research-export.ts.)
 */
import { sql } from 'drizzle-orm';
import { type Queryable, rows } from './open.ts';
import {
  isoMicros,
  isoMillis,
  OUTCOME_FROM_PAGE,
  type OutcomeFilter,
  outcomeConditions,
  PUBLIC_TERM_SET,
  unsealed,
  whereClause,
} from './research-filters.ts';

export interface OutcomeKey {
  /** Send time, RFC 3339 with microseconds. */
  sendAt: string;
  canaryId: string;
  recipientId: string;
}

export interface ResearchOutcomeRow {
  canary_id: string;
  recipient_account_id: string;
  campaign_id: string;
  platform: string;
  kind: 'test' | 'control';
  pair_id: string;
  /** Null while the canary is sealed (research-filters.ts SEALED). */
  term_set: string[] | null;
  /** Null while the canary is sealed. */
  text: string | null;
  status: string;
  send_at: string;
  deadline_at: string;
  received_at: string | null;
  latency_ms: number | null;
  /** Null while the canary is sealed, or when nothing arrived. */
  received_text: string | null;
  failure: string | null;
  notice: string | null;
  conversation_id: string;
  conversation_kind: string;
  sender_account_id: string;
  sender_region: string;
  sender_probe_id: string;
  recipient_region: string;
  recipient_probe_id: string;
  data_format_version: number;
  updated_at: string;
  /** Keyset position of the row. */
  key_send_at: string;
}

export async function readOutcomes(
  q: Queryable,
  filter: OutcomeFilter,
  page: {
    after?: OutcomeKey | undefined;
    order: 'asc' | 'desc';
    limit: number;
  },
): Promise<ResearchOutcomeRow[]> {
  const conds = outcomeConditions(filter);
  const desc = page.order === 'desc';
  const cols = sql`(c.send_at, o.canary_id, o.recipient_account_id)`;
  if (page.after) {
    const k = page.after;
    const key = sql`(${k.sendAt}::timestamptz, ${k.canaryId}::uuid, ${k.recipientId}::uuid)`;
    conds.push(desc ? sql`${cols} < ${key}` : sql`${cols} > ${key}`);
    // Implied by the row comparison, but a row comparison across two tables cannot start
    // an index scan: this bound lets canaries (send_at, id) begin at the cursor, so a page
    // deep into the table costs what the first one does.
    const at = sql`${k.sendAt}::timestamptz`;
    conds.push(desc ? sql`c.send_at <= ${at}` : sql`c.send_at >= ${at}`);
  }
  const dir = desc ? sql`desc` : sql`asc`;
  const order = sql`c.send_at ${dir}, o.canary_id ${dir}, o.recipient_account_id ${dir}`;
  // A page reads about `limit` rows from the cursor on; with a table of millions the planner
  // still plans parallel workers, whose start cost more than the page (50M outcomes: 17-20 ms
  // median with them, 5-6 ms without). Research reads run in a transaction, which this holds for.
  await q.execute(sql`set local max_parallel_workers_per_gather = 0`);
  return rows<ResearchOutcomeRow>(
    q,
    sql`select c.id as canary_id, o.recipient_account_id, c.campaign_id, cv.platform, c.kind, c.pair_id,
          ${PUBLIC_TERM_SET} as term_set, ${unsealed(sql`c.text`)} as text, o.status, ${isoMillis(sql`c.send_at`)} as send_at,
          ${isoMillis(sql`o.deadline_at`)} as deadline_at, ${isoMillis(sql`o.received_at`)} as received_at,
          o.latency_ms, ${unsealed(sql`o.received_text`)} as received_text, o.failure, o.notice, c.conversation_id, cv.kind as conversation_kind,
          c.sender_account_id, s.region as sender_region, s.probe_id as sender_probe_id,
          r.region as recipient_region, r.probe_id as recipient_probe_id, o.data_format_version,
          ${isoMillis(sql`o.updated_at`)} as updated_at, ${isoMicros(sql`c.send_at`)} as key_send_at
        from ${OUTCOME_FROM_PAGE}
        where ${whereClause(conds)}
        order by ${order}
        limit ${page.limit}`,
  );
}
