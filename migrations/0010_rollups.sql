CREATE TABLE "outcome_rollups" (
	"grain" text NOT NULL,
	"bucket" timestamp with time zone NOT NULL,
	"campaign_id" uuid NOT NULL,
	"scoped" boolean NOT NULL,
	"kind" text NOT NULL,
	"platform" text NOT NULL,
	"conversation_kind" text NOT NULL,
	"sender_region" text NOT NULL,
	"recipient_region" text NOT NULL,
	"delivered" integer NOT NULL,
	"delayed" integer NOT NULL,
	"missing" integer NOT NULL,
	"altered" integer NOT NULL,
	"rejected" integer NOT NULL,
	"failed" integer NOT NULL,
	"pending" integer NOT NULL,
	"latency" integer[] NOT NULL,
	CONSTRAINT "outcome_rollups_pk" PRIMARY KEY("grain","scoped","bucket","campaign_id","kind","platform","conversation_kind","sender_region","recipient_region"),
	CONSTRAINT "outcome_rollups_grain_check" CHECK ("outcome_rollups"."grain" in ('minute', 'hour', 'day'))
);
--> statement-breakpoint
CREATE TABLE "rollup_watermark" (
	"id" integer PRIMARY KEY NOT NULL,
	"watermark" timestamp with time zone NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "rollup_watermark_one_row" CHECK ("rollup_watermark"."id" = 1)
);
--> statement-breakpoint
ALTER TABLE "outcome_rollups" ADD CONSTRAINT "outcome_rollups_campaign_id_campaigns_id_fk" FOREIGN KEY ("campaign_id") REFERENCES "public"."campaigns"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "outcome_rollups_campaign_idx" ON "outcome_rollups" USING btree ("campaign_id","grain","bucket");--> statement-breakpoint
CREATE INDEX "outcomes_updated_at_idx" ON "outcomes" USING btree ("updated_at");