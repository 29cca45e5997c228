/**
 * Probe health for the research API and metrics: what the probes reported at check-in.
 * Selects named columns only: no public key, no label, no handle (operators are at risk).
 */
import { sql } from 'drizzle-orm';
import { type Queryable, rows } from './open.ts';
import { isoMillis } from './research-filters.ts';

export interface ProbeHealthRow {
  id: string;
  country: string;
  asn: number;
  software_version: string;
  registered_at: string;
  last_checkin_at: string | null;
  clock_offset_ms: number | null;
  clock_rtt_ms: number | null;
  clock_measured_at: string | null;
  outbox_backlog: number | null;
  dead_letters: number | null;
  storage_full_since: string | null;
}

export interface ProbeAccountRow {
  id: string;
  probe_id: string;
  platform: string;
  region: string;
  state: string;
  adapter_name: string;
  adapter_version: string;
  last_seen_at: string;
}

export async function readProbeHealth(
  q: Queryable,
): Promise<{ probes: ProbeHealthRow[]; accounts: ProbeAccountRow[] }> {
  const probes = await rows<ProbeHealthRow>(
    q,
    sql`select id, country, asn::float8 as asn, software_version, ${isoMillis(sql`registered_at`)} as registered_at,
          ${isoMillis(sql`last_checkin_at`)} as last_checkin_at, clock_offset_ms, clock_rtt_ms,
          ${isoMillis(sql`clock_measured_at`)} as clock_measured_at, outbox_backlog, dead_letters,
          ${isoMillis(sql`storage_full_since`)} as storage_full_since
        from probes order by registered_at, id`,
  );
  const accounts = await rows<ProbeAccountRow>(
    q,
    sql`select id, probe_id, platform, region, state, adapter_name, adapter_version,
          ${isoMillis(sql`last_seen_at`)} as last_seen_at
        from accounts order by platform, region, id`,
  );
  return { probes, accounts };
}

/** Backlog and dead letters per probe, as last reported (metrics). */
export async function readProbeBacklogs(q: Queryable): Promise<
  {
    id: string;
    country: string;
    outbox_backlog: number | null;
    dead_letters: number | null;
    last_checkin_s: number | null;
  }[]
> {
  return rows(
    q,
    sql`select id, country, outbox_backlog, dead_letters,
          extract(epoch from last_checkin_at)::float8 as last_checkin_s
        from probes where revoked_at is null`,
  );
}
