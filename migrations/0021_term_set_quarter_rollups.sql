-- The term-set list within a time window (decision 037, amended): quarter-day rows (six hours from
-- midnight UTC) for the whole quarters beside the window's whole days, so that hour rows are read
-- only for the hours beside those. The new table starts empty while the others are full, and a
-- read would miss what it should hold: the term-set rollups start again from nothing, as in 0019
-- and 0020, and the job rebuilds all four tables; until then reads take every canary from the
-- outcomes (slower, never wrong; decision 033).
DELETE FROM "term_set_day_rollups";--> statement-breakpoint
DELETE FROM "term_set_hour_rollups";--> statement-breakpoint
DELETE FROM "term_set_rollups";--> statement-breakpoint
DELETE FROM "term_set_rollup_progress";--> statement-breakpoint
CREATE TABLE "term_set_quarter_rollups" (
	"campaign_id" uuid NOT NULL,
	"term_set" text[] NOT NULL,
	"kind" text NOT NULL,
	"bucket" timestamp with time zone NOT NULL,
	"delivered" integer NOT NULL,
	"delayed" integer NOT NULL,
	"missing" integer NOT NULL,
	"altered" integer NOT NULL,
	"rejected" integer NOT NULL,
	"failed" integer NOT NULL,
	"pending" integer NOT NULL,
	"latency" integer[] NOT NULL,
	"first_sent_at" timestamp with time zone NOT NULL,
	"last_sent_at" timestamp with time zone NOT NULL,
	CONSTRAINT "term_set_quarter_rollups_pk" PRIMARY KEY("bucket","campaign_id","term_set","kind")
);
--> statement-breakpoint
ALTER TABLE "term_set_quarter_rollups" ADD CONSTRAINT "term_set_quarter_rollups_campaign_id_campaigns_id_fk" FOREIGN KEY ("campaign_id") REFERENCES "public"."campaigns"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "term_set_quarter_rollups_campaign_idx" ON "term_set_quarter_rollups" USING btree ("campaign_id");