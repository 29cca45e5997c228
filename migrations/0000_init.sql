CREATE TABLE "accounts" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"probe_id" uuid NOT NULL,
	"platform" text NOT NULL,
	"handle" text NOT NULL,
	"region" text NOT NULL,
	"adapter_name" text NOT NULL,
	"adapter_version" text NOT NULL,
	"client_version" text,
	"state" text NOT NULL,
	"first_seen_at" timestamp with time zone DEFAULT now() NOT NULL,
	"last_seen_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "accounts_platform_handle_key" UNIQUE("platform","handle"),
	CONSTRAINT "accounts_state_check" CHECK ("accounts"."state" in ('active', 'quarantined', 'login_required'))
);
--> statement-breakpoint
CREATE TABLE "campaigns" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"name" text NOT NULL,
	"mode" text NOT NULL,
	"term_list_ids" uuid[] NOT NULL,
	"conversation_selection" jsonb NOT NULL,
	"cadence_cron" text NOT NULL,
	"deadline_seconds" integer NOT NULL,
	"term_sets_per_round" integer NOT NULL,
	"seed" text NOT NULL,
	"active" boolean DEFAULT true NOT NULL,
	"starts_at" timestamp with time zone DEFAULT now() NOT NULL,
	"ends_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "campaigns_mode_check" CHECK ("campaigns"."mode" in ('monitor', 'screen', 'isolate'))
);
--> statement-breakpoint
CREATE TABLE "canaries" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"campaign_id" uuid NOT NULL,
	"round_id" uuid,
	"kind" text NOT NULL,
	"pair_id" uuid NOT NULL,
	"term_set" text[] NOT NULL,
	"carried_terms" text[] NOT NULL,
	"text" text NOT NULL,
	"nonce" text NOT NULL,
	"sender_account_id" uuid NOT NULL,
	"conversation_id" uuid NOT NULL,
	"send_at" timestamp with time zone NOT NULL,
	"deadline_at" timestamp with time zone NOT NULL,
	"template_id" text NOT NULL,
	"template_version" text NOT NULL,
	"seed" text NOT NULL,
	"handed_out_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "canaries_nonce_unique" UNIQUE("nonce"),
	CONSTRAINT "canaries_kind_check" CHECK ("canaries"."kind" in ('test', 'control'))
);
--> statement-breakpoint
CREATE TABLE "conversation_members" (
	"conversation_id" uuid NOT NULL,
	"handle" text NOT NULL,
	"seen_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "conversation_members_conversation_id_handle_pk" PRIMARY KEY("conversation_id","handle")
);
--> statement-breakpoint
CREATE TABLE "conversations" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"platform" text NOT NULL,
	"ref" text NOT NULL,
	"kind" text NOT NULL,
	"title" text,
	"first_seen_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "conversations_platform_ref_key" UNIQUE("platform","ref"),
	CONSTRAINT "conversations_kind_check" CHECK ("conversations"."kind" in ('direct', 'group'))
);
--> statement-breakpoint
CREATE TABLE "enrollment_tokens" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"token_hash" text NOT NULL,
	"label" text,
	"uses_left" integer NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "enrollment_tokens_token_hash_unique" UNIQUE("token_hash")
);
--> statement-breakpoint
CREATE TABLE "events" (
	"event_id" uuid PRIMARY KEY NOT NULL,
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
	CONSTRAINT "events_type_check" CHECK ("events"."type" in ('sent', 'rejected', 'failed', 'received'))
);
--> statement-breakpoint
CREATE TABLE "findings" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"campaign_id" uuid,
	"term_set" text[] NOT NULL,
	"scope" jsonb NOT NULL,
	"window_start" timestamp with time zone NOT NULL,
	"window_end" timestamp with time zone NOT NULL,
	"verdict" text NOT NULL,
	"test_trials" integer NOT NULL,
	"control_trials" integer NOT NULL,
	"test_rate" double precision,
	"control_rate" double precision,
	"p_value" double precision,
	"q_value" double precision,
	"ci_low" double precision,
	"ci_high" double precision,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
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
	CONSTRAINT "outcomes_canary_id_recipient_account_id_pk" PRIMARY KEY("canary_id","recipient_account_id"),
	CONSTRAINT "outcomes_status_check" CHECK ("outcomes"."status" in ('pending', 'delivered', 'delayed', 'missing', 'altered', 'rejected', 'failed'))
);
--> statement-breakpoint
CREATE TABLE "probes" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"public_key" text NOT NULL,
	"country" text NOT NULL,
	"asn" bigint NOT NULL,
	"software_version" text NOT NULL,
	"label" text,
	"enrollment_token_id" uuid,
	"registered_at" timestamp with time zone DEFAULT now() NOT NULL,
	"last_checkin_at" timestamp with time zone,
	"clock_offset_ms" double precision,
	"clock_rtt_ms" double precision,
	"clock_measured_at" timestamp with time zone,
	"outbox_backlog" integer,
	"dead_letters" integer,
	CONSTRAINT "probes_public_key_unique" UNIQUE("public_key")
);
--> statement-breakpoint
CREATE TABLE "request_ids" (
	"request_id" uuid PRIMARY KEY NOT NULL,
	"probe_id" uuid NOT NULL,
	"seen_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "rounds" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"campaign_id" uuid NOT NULL,
	"round_at" timestamp with time zone NOT NULL,
	"seed" text NOT NULL,
	"rng_algorithm" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "rounds_campaign_round_at_key" UNIQUE("campaign_id","round_at")
);
--> statement-breakpoint
CREATE TABLE "term_lists" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"name" text NOT NULL,
	"source" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "term_lists_name_unique" UNIQUE("name")
);
--> statement-breakpoint
CREATE TABLE "terms" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"term_list_id" uuid NOT NULL,
	"line" integer NOT NULL,
	"term_set" text[] NOT NULL,
	CONSTRAINT "terms_list_line_key" UNIQUE("term_list_id","line")
);
--> statement-breakpoint
ALTER TABLE "accounts" ADD CONSTRAINT "accounts_probe_id_probes_id_fk" FOREIGN KEY ("probe_id") REFERENCES "public"."probes"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "canaries" ADD CONSTRAINT "canaries_campaign_id_campaigns_id_fk" FOREIGN KEY ("campaign_id") REFERENCES "public"."campaigns"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "canaries" ADD CONSTRAINT "canaries_round_id_rounds_id_fk" FOREIGN KEY ("round_id") REFERENCES "public"."rounds"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "canaries" ADD CONSTRAINT "canaries_sender_account_id_accounts_id_fk" FOREIGN KEY ("sender_account_id") REFERENCES "public"."accounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "canaries" ADD CONSTRAINT "canaries_conversation_id_conversations_id_fk" FOREIGN KEY ("conversation_id") REFERENCES "public"."conversations"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "conversation_members" ADD CONSTRAINT "conversation_members_conversation_id_conversations_id_fk" FOREIGN KEY ("conversation_id") REFERENCES "public"."conversations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "events" ADD CONSTRAINT "events_probe_id_probes_id_fk" FOREIGN KEY ("probe_id") REFERENCES "public"."probes"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "events" ADD CONSTRAINT "events_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "findings" ADD CONSTRAINT "findings_campaign_id_campaigns_id_fk" FOREIGN KEY ("campaign_id") REFERENCES "public"."campaigns"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "outcomes" ADD CONSTRAINT "outcomes_canary_id_canaries_id_fk" FOREIGN KEY ("canary_id") REFERENCES "public"."canaries"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "outcomes" ADD CONSTRAINT "outcomes_recipient_account_id_accounts_id_fk" FOREIGN KEY ("recipient_account_id") REFERENCES "public"."accounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "probes" ADD CONSTRAINT "probes_enrollment_token_id_enrollment_tokens_id_fk" FOREIGN KEY ("enrollment_token_id") REFERENCES "public"."enrollment_tokens"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "request_ids" ADD CONSTRAINT "request_ids_probe_id_probes_id_fk" FOREIGN KEY ("probe_id") REFERENCES "public"."probes"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "rounds" ADD CONSTRAINT "rounds_campaign_id_campaigns_id_fk" FOREIGN KEY ("campaign_id") REFERENCES "public"."campaigns"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "terms" ADD CONSTRAINT "terms_term_list_id_term_lists_id_fk" FOREIGN KEY ("term_list_id") REFERENCES "public"."term_lists"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "accounts_probe_idx" ON "accounts" USING btree ("probe_id");--> statement-breakpoint
CREATE INDEX "canaries_sender_send_at_idx" ON "canaries" USING btree ("sender_account_id","send_at");--> statement-breakpoint
CREATE INDEX "canaries_pair_idx" ON "canaries" USING btree ("pair_id");--> statement-breakpoint
CREATE INDEX "events_canary_idx" ON "events" USING btree ("canary_id");--> statement-breakpoint
CREATE INDEX "events_nonce_idx" ON "events" USING btree ("nonce");--> statement-breakpoint
CREATE INDEX "outcomes_status_deadline_idx" ON "outcomes" USING btree ("status","deadline_at");--> statement-breakpoint
CREATE INDEX "request_ids_seen_at_idx" ON "request_ids" USING btree ("seen_at");