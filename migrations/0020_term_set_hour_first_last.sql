-- Each hour row keeps its first and last send, so that the term-set list within a time window
-- can be read from the hour rows (decision 037). Rows written before have neither: the term-set
-- rollups start again from nothing, as in 0019, and the job rebuilds them; until then reads take
-- every canary from the outcomes (slower, never wrong; decision 033).
DELETE FROM "term_set_hour_rollups";--> statement-breakpoint
DELETE FROM "term_set_rollups";--> statement-breakpoint
DELETE FROM "term_set_rollup_progress";--> statement-breakpoint
ALTER TABLE "term_set_hour_rollups" ADD COLUMN "first_sent_at" timestamp with time zone NOT NULL;--> statement-breakpoint
ALTER TABLE "term_set_hour_rollups" ADD COLUMN "last_sent_at" timestamp with time zone NOT NULL;
