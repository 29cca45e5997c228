-- Rollup rows gain the /api/v1/latency bins (decision 032). Rows written before have none, so
-- the rollups are emptied and the watermark removed: until the job has rebuilt them, reads take
-- every cell from the outcomes (slower, never wrong; decision 022).
DELETE FROM "outcome_rollup_totals";--> statement-breakpoint
DELETE FROM "outcome_rollups";--> statement-breakpoint
DELETE FROM "rollup_watermark";--> statement-breakpoint
ALTER TABLE "outcome_rollup_totals" ADD COLUMN "bins" integer[] NOT NULL;--> statement-breakpoint
ALTER TABLE "outcome_rollups" ADD COLUMN "bins" integer[] NOT NULL;
