CREATE TABLE "derived_term_sets" (
	"campaign_id" uuid NOT NULL,
	"key" text NOT NULL,
	"term_set" text[] NOT NULL,
	"followup_id" uuid,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "derived_term_sets_campaign_id_key_pk" PRIMARY KEY("campaign_id","key")
);
--> statement-breakpoint
CREATE TABLE "followup_steps" (
	"followup_id" uuid NOT NULL,
	"step" integer NOT NULL,
	"messages" jsonb NOT NULL,
	"pair_ids" uuid[] NOT NULL,
	"results" jsonb,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "followup_steps_followup_id_step_pk" PRIMARY KEY("followup_id","step")
);
--> statement-breakpoint
CREATE TABLE "followups" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"campaign_id" uuid NOT NULL,
	"procedure" text NOT NULL,
	"input" jsonb NOT NULL,
	"key" text NOT NULL,
	"scope" jsonb NOT NULL,
	"status" text DEFAULT 'running' NOT NULL,
	"result" jsonb,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "followups_campaign_key_key" UNIQUE("campaign_id","key"),
	CONSTRAINT "followups_procedure_check" CHECK ("followups"."procedure" in ('screen', 'isolate')),
	CONSTRAINT "followups_status_check" CHECK ("followups"."status" in ('running', 'done', 'failed'))
);
--> statement-breakpoint
CREATE TABLE "sequential_states" (
	"campaign_id" uuid NOT NULL,
	"key" text NOT NULL,
	"term_set" text[] NOT NULL,
	"scope" jsonb NOT NULL,
	"state" jsonb NOT NULL,
	"settled_verdict" text,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "sequential_states_campaign_id_key_pk" PRIMARY KEY("campaign_id","key")
);
--> statement-breakpoint
ALTER TABLE "findings" ADD COLUMN "key" text;--> statement-breakpoint
ALTER TABLE "findings" ADD COLUMN "kind" text;--> statement-breakpoint
ALTER TABLE "findings" ADD COLUMN "diff_ci_low" double precision;--> statement-breakpoint
ALTER TABLE "findings" ADD COLUMN "diff_ci_high" double precision;--> statement-breakpoint
ALTER TABLE "findings" ADD COLUMN "settled" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "findings" ADD COLUMN "minimal" boolean DEFAULT true NOT NULL;--> statement-breakpoint
ALTER TABLE "findings" ADD COLUMN "since" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "findings" ADD COLUMN "ended_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "findings" ADD COLUMN "detail" jsonb;--> statement-breakpoint
ALTER TABLE "findings" ADD COLUMN "updated_at" timestamp with time zone DEFAULT now() NOT NULL;--> statement-breakpoint
ALTER TABLE "derived_term_sets" ADD CONSTRAINT "derived_term_sets_campaign_id_campaigns_id_fk" FOREIGN KEY ("campaign_id") REFERENCES "public"."campaigns"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "derived_term_sets" ADD CONSTRAINT "derived_term_sets_followup_id_followups_id_fk" FOREIGN KEY ("followup_id") REFERENCES "public"."followups"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "followup_steps" ADD CONSTRAINT "followup_steps_followup_id_followups_id_fk" FOREIGN KEY ("followup_id") REFERENCES "public"."followups"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "followups" ADD CONSTRAINT "followups_campaign_id_campaigns_id_fk" FOREIGN KEY ("campaign_id") REFERENCES "public"."campaigns"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "sequential_states" ADD CONSTRAINT "sequential_states_campaign_id_campaigns_id_fk" FOREIGN KEY ("campaign_id") REFERENCES "public"."campaigns"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "findings" ADD CONSTRAINT "findings_campaign_key_key" UNIQUE("campaign_id","key");--> statement-breakpoint
ALTER TABLE "findings" ADD CONSTRAINT "findings_verdict_check" CHECK ("findings"."verdict" in ('suppressed', 'delayed', 'rejected', 'altered', 'none', 'inconclusive'));