-- Term-set rollups per hour (decision 035), written by the term-set rollup job beside
-- term_set_rollups behind the same closed line. Both start again from nothing so that they hold
-- the same canaries: until the job has rebuilt them, reads take every canary from the outcomes
-- (slower, never wrong; decision 033).
DELETE FROM "term_set_rollups";--> statement-breakpoint
DELETE FROM "term_set_rollup_progress";--> statement-breakpoint
CREATE TABLE "term_set_hour_rollups" (
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
	CONSTRAINT "term_set_hour_rollups_pk" PRIMARY KEY("term_set","campaign_id","kind","bucket")
);
--> statement-breakpoint
ALTER TABLE "term_set_hour_rollups" ADD CONSTRAINT "term_set_hour_rollups_campaign_id_campaigns_id_fk" FOREIGN KEY ("campaign_id") REFERENCES "public"."campaigns"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "term_set_hour_rollups_campaign_idx" ON "term_set_hour_rollups" USING btree ("campaign_id");