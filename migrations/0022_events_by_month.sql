-- Hand-written (decision 039): drizzle-kit does not model partitioning. `events` becomes
-- partitioned by month of received_at (UTC), every row kept. The old table is renamed, a
-- partitioned one made with the same columns, constraints and indexes (its key now holds
-- received_at), a partition made for every month that holds rows (within ten years back)
-- up to two months ahead, plus a default partition for rows outside them, the rows copied,
-- the old table dropped. The collector makes later months ahead (collector/db/partitions.ts).
ALTER TABLE "events" RENAME TO "events_unpartitioned";
--> statement-breakpoint
ALTER TABLE "events_unpartitioned" RENAME CONSTRAINT "events_probe_event_pk" TO "events_unpartitioned_pk";
--> statement-breakpoint
ALTER TABLE "events_unpartitioned" RENAME CONSTRAINT "events_type_check" TO "events_unpartitioned_type_check";
--> statement-breakpoint
ALTER TABLE "events_unpartitioned" RENAME CONSTRAINT "events_probe_id_probes_id_fk" TO "events_unpartitioned_probe_fk";
--> statement-breakpoint
ALTER TABLE "events_unpartitioned" RENAME CONSTRAINT "events_account_id_accounts_id_fk" TO "events_unpartitioned_account_fk";
--> statement-breakpoint
DROP INDEX "events_canary_idx";
--> statement-breakpoint
DROP INDEX "events_unknown_nonce_idx";
--> statement-breakpoint
DROP INDEX "events_lookalike_received_at_idx";
--> statement-breakpoint
CREATE TABLE "events" (
	"event_id" uuid NOT NULL,
	"probe_id" uuid NOT NULL,
	"request_id" uuid NOT NULL,
	"signature" text NOT NULL,
	"type" text NOT NULL,
	"platform" text NOT NULL,
	"account_id" uuid NOT NULL,
	"conversation" text NOT NULL,
	"canary_id" uuid,
	"nonce" text,
	"at" timestamp with time zone NOT NULL,
	"clock_offset_ms" double precision NOT NULL,
	"raw" jsonb NOT NULL,
	"received_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "events_probe_event_pk" PRIMARY KEY("probe_id","event_id","received_at"),
	CONSTRAINT "events_type_check" CHECK ("events"."type" in ('sent', 'rejected', 'failed', 'received'))
) PARTITION BY RANGE ("received_at");
--> statement-breakpoint
CREATE TABLE "events_default" PARTITION OF "events" DEFAULT;
--> statement-breakpoint
DO $$
DECLARE
  -- Months as UTC wall-clock timestamps: month arithmetic on timestamptz would follow the
  -- session's time zone (and its daylight saving).
  lo timestamp := date_trunc('month', now() AT TIME ZONE 'UTC');
  hi timestamp := lo + interval '3 months';
  oldest timestamp;
  m timestamp;
BEGIN
  SELECT min(received_at AT TIME ZONE 'UTC') INTO oldest FROM events_unpartitioned
    WHERE received_at AT TIME ZONE 'UTC' >= lo - interval '10 years' AND received_at AT TIME ZONE 'UTC' < hi;
  IF oldest IS NOT NULL THEN
    lo := least(lo, date_trunc('month', oldest));
  END IF;
  m := lo;
  WHILE m < hi LOOP
    EXECUTE format('CREATE TABLE %I PARTITION OF events FOR VALUES FROM (%L) TO (%L)',
      'events_' || to_char(m, 'YYYY_MM'), to_char(m, 'YYYY-MM-DD"T"00:00:00"Z"'),
      to_char(m + interval '1 month', 'YYYY-MM-DD"T"00:00:00"Z"'));
    m := m + interval '1 month';
  END LOOP;
END $$;
--> statement-breakpoint
INSERT INTO "events" ("event_id", "probe_id", "request_id", "signature", "type", "platform", "account_id",
  "conversation", "canary_id", "nonce", "at", "clock_offset_ms", "raw", "received_at")
SELECT "event_id", "probe_id", "request_id", "signature", "type", "platform", "account_id",
  "conversation", "canary_id", "nonce", "at", "clock_offset_ms", "raw", "received_at"
FROM "events_unpartitioned";
--> statement-breakpoint
DROP TABLE "events_unpartitioned";
--> statement-breakpoint
ALTER TABLE "events" ADD CONSTRAINT "events_probe_id_probes_id_fk" FOREIGN KEY ("probe_id") REFERENCES "public"."probes"("id") ON DELETE no action ON UPDATE no action;
--> statement-breakpoint
ALTER TABLE "events" ADD CONSTRAINT "events_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE no action ON UPDATE no action;
--> statement-breakpoint
CREATE INDEX "events_canary_idx" ON "events" USING btree ("canary_id");
--> statement-breakpoint
CREATE INDEX "events_unknown_nonce_idx" ON "events" USING btree ("probe_id","received_at") WHERE "events"."type" = 'received' and "events"."canary_id" is null;
--> statement-breakpoint
CREATE INDEX "events_lookalike_received_at_idx" ON "events" USING btree ("received_at") WHERE "events"."type" = 'received' and "events"."canary_id" is null;
