-- Hand-written (decision 040): drizzle-kit does not model partitioning. `outcomes` becomes
-- partitioned by month of deadline_at (UTC), every row kept, as `events` did in 0022. An
-- outcome's deadline_at is its canary's, so one canary's outcomes sit in one month and the
-- key (now holding deadline_at) still makes (canary, recipient) unique; each row takes its
-- canary's deadline_at exactly, which reads now join on. The old table is
-- renamed, a partitioned one made with the same columns, constraints and indexes, a partition
-- made for every month that holds rows (within ten years back) up to two months ahead, plus a
-- default partition for rows outside them, the rows copied, the old table dropped. The
-- collector makes later months ahead (collector/db/partitions.ts).
ALTER TABLE "outcomes" RENAME TO "outcomes_unpartitioned";
--> statement-breakpoint
ALTER TABLE "outcomes_unpartitioned" RENAME CONSTRAINT "outcomes_canary_id_recipient_account_id_pk" TO "outcomes_unpartitioned_pk";
--> statement-breakpoint
ALTER TABLE "outcomes_unpartitioned" RENAME CONSTRAINT "outcomes_status_check" TO "outcomes_unpartitioned_status_check";
--> statement-breakpoint
ALTER TABLE "outcomes_unpartitioned" RENAME CONSTRAINT "outcomes_canary_id_canaries_id_fk" TO "outcomes_unpartitioned_canary_fk";
--> statement-breakpoint
ALTER TABLE "outcomes_unpartitioned" RENAME CONSTRAINT "outcomes_recipient_account_id_accounts_id_fk" TO "outcomes_unpartitioned_account_fk";
--> statement-breakpoint
DROP INDEX "outcomes_status_deadline_idx";
--> statement-breakpoint
DROP INDEX "outcomes_updated_at_idx";
--> statement-breakpoint
CREATE TABLE "outcomes" (
	"canary_id" uuid NOT NULL,
	"recipient_account_id" uuid NOT NULL,
	"status" text NOT NULL,
	"deadline_at" timestamp with time zone NOT NULL,
	"latency_ms" integer,
	"sent_event_id" uuid,
	"received_event_id" uuid,
	"received_at" timestamp with time zone,
	"received_text" text,
	"failure" text,
	"notice" text,
	"data_format_version" integer NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "outcomes_canary_id_recipient_account_id_deadline_at_pk" PRIMARY KEY("canary_id","recipient_account_id","deadline_at"),
	CONSTRAINT "outcomes_status_check" CHECK ("outcomes"."status" in ('pending', 'delivered', 'delayed', 'missing', 'altered', 'rejected', 'failed'))
) PARTITION BY RANGE ("deadline_at");
--> statement-breakpoint
CREATE TABLE "outcomes_default" PARTITION OF "outcomes" DEFAULT;
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
  SELECT min(deadline_at AT TIME ZONE 'UTC') INTO oldest FROM outcomes_unpartitioned
    WHERE deadline_at AT TIME ZONE 'UTC' >= lo - interval '10 years' AND deadline_at AT TIME ZONE 'UTC' < hi;
  IF oldest IS NOT NULL THEN
    lo := least(lo, date_trunc('month', oldest));
  END IF;
  m := lo;
  WHILE m < hi LOOP
    EXECUTE format('CREATE TABLE %I PARTITION OF outcomes FOR VALUES FROM (%L) TO (%L)',
      'outcomes_' || to_char(m, 'YYYY_MM'), to_char(m, 'YYYY-MM-DD"T"00:00:00"Z"'),
      to_char(m + interval '1 month', 'YYYY-MM-DD"T"00:00:00"Z"'));
    m := m + interval '1 month';
  END LOOP;
END $$;
--> statement-breakpoint
INSERT INTO "outcomes" ("canary_id", "recipient_account_id", "status", "deadline_at", "latency_ms",
  "sent_event_id", "received_event_id", "received_at", "received_text", "failure", "notice",
  "data_format_version", "updated_at")
-- deadline_at from the canary itself (every outcome has one: the foreign key), whatever copy
-- the row held: reads join on it (o.deadline_at = c.deadline_at).
SELECT o."canary_id", o."recipient_account_id", o."status", c."deadline_at", o."latency_ms",
  o."sent_event_id", o."received_event_id", o."received_at", o."received_text", o."failure", o."notice",
  o."data_format_version", o."updated_at"
FROM "outcomes_unpartitioned" o JOIN "canaries" c ON c."id" = o."canary_id";
--> statement-breakpoint
DROP TABLE "outcomes_unpartitioned";
--> statement-breakpoint
ALTER TABLE "outcomes" ADD CONSTRAINT "outcomes_canary_id_canaries_id_fk" FOREIGN KEY ("canary_id") REFERENCES "public"."canaries"("id") ON DELETE cascade ON UPDATE no action;
--> statement-breakpoint
ALTER TABLE "outcomes" ADD CONSTRAINT "outcomes_recipient_account_id_accounts_id_fk" FOREIGN KEY ("recipient_account_id") REFERENCES "public"."accounts"("id") ON DELETE no action ON UPDATE no action;
--> statement-breakpoint
CREATE INDEX "outcomes_status_deadline_idx" ON "outcomes" USING btree ("status","deadline_at");
--> statement-breakpoint
CREATE INDEX "outcomes_updated_at_idx" ON "outcomes" USING btree ("updated_at");
