CREATE TABLE "judging_backlog" (
	"campaign_id" uuid NOT NULL,
	"term_set" text[] NOT NULL,
	"platform" text NOT NULL,
	"conversation_kind" text NOT NULL,
	"sender_region" text NOT NULL,
	"recipient_region" text NOT NULL,
	"first_change" timestamp with time zone NOT NULL,
	"mark" bigserial NOT NULL,
	CONSTRAINT "judging_backlog_pk" PRIMARY KEY("campaign_id","term_set","platform","conversation_kind","sender_region","recipient_region")
);
--> statement-breakpoint
CREATE TABLE "judging_state" (
	"campaign_id" uuid PRIMARY KEY NOT NULL,
	"outcomes_before" timestamp with time zone,
	"deadlines_before" timestamp with time zone,
	"version" bigint DEFAULT 0 NOT NULL,
	"options" text NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "judgments" (
	"campaign_id" uuid NOT NULL,
	"key" text NOT NULL,
	"term_sets" jsonb NOT NULL,
	"judged" text NOT NULL,
	"written" text,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "judgments_campaign_id_key_pk" PRIMARY KEY("campaign_id","key")
);
--> statement-breakpoint
ALTER TABLE "judging_backlog" ADD CONSTRAINT "judging_backlog_campaign_id_campaigns_id_fk" FOREIGN KEY ("campaign_id") REFERENCES "public"."campaigns"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "judging_state" ADD CONSTRAINT "judging_state_campaign_id_campaigns_id_fk" FOREIGN KEY ("campaign_id") REFERENCES "public"."campaigns"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "judgments" ADD CONSTRAINT "judgments_campaign_id_campaigns_id_fk" FOREIGN KEY ("campaign_id") REFERENCES "public"."campaigns"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "judging_backlog_oldest_idx" ON "judging_backlog" USING btree ("campaign_id","first_change");--> statement-breakpoint
CREATE INDEX "canaries_campaign_deadline_idx" ON "canaries" USING btree ("campaign_id","deadline_at");--> statement-breakpoint
CREATE INDEX "canaries_campaign_term_set_idx" ON "canaries" USING btree ("campaign_id","term_set","kind");--> statement-breakpoint
CREATE INDEX "followup_steps_pair_ids_idx" ON "followup_steps" USING gin ("pair_ids");