CREATE TABLE "term_set_rollup_progress" (
	"campaign_id" uuid PRIMARY KEY NOT NULL,
	"closed_until" timestamp with time zone NOT NULL,
	"watermark" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "term_set_rollups" (
	"campaign_id" uuid NOT NULL,
	"term_set" text[] NOT NULL,
	"kind" text NOT NULL,
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
	CONSTRAINT "term_set_rollups_pk" PRIMARY KEY("campaign_id","term_set","kind")
);
--> statement-breakpoint
ALTER TABLE "term_set_rollup_progress" ADD CONSTRAINT "term_set_rollup_progress_campaign_id_campaigns_id_fk" FOREIGN KEY ("campaign_id") REFERENCES "public"."campaigns"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "term_set_rollups" ADD CONSTRAINT "term_set_rollups_campaign_id_campaigns_id_fk" FOREIGN KEY ("campaign_id") REFERENCES "public"."campaigns"("id") ON DELETE cascade ON UPDATE no action;