CREATE TABLE "conversation_views" (
	"conversation_id" uuid NOT NULL,
	"probe_id" uuid NOT NULL,
	"kind" text NOT NULL,
	"title" text,
	"members" text[] NOT NULL,
	"first_seen_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "conversation_views_conversation_id_probe_id_pk" PRIMARY KEY("conversation_id","probe_id"),
	CONSTRAINT "conversation_views_kind_check" CHECK ("conversation_views"."kind" in ('direct', 'group'))
);
--> statement-breakpoint
ALTER TABLE "campaigns" ADD COLUMN "min_independent_probes" integer DEFAULT 1 NOT NULL;--> statement-breakpoint
ALTER TABLE "findings" ADD COLUMN "independent_probes" jsonb;--> statement-breakpoint
ALTER TABLE "conversation_views" ADD CONSTRAINT "conversation_views_conversation_id_conversations_id_fk" FOREIGN KEY ("conversation_id") REFERENCES "public"."conversations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "conversation_views" ADD CONSTRAINT "conversation_views_probe_id_probes_id_fk" FOREIGN KEY ("probe_id") REFERENCES "public"."probes"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "conversation_views_probe_idx" ON "conversation_views" USING btree ("probe_id");--> statement-breakpoint
-- hand-written
-- Backfill: every probe holding an account in a conversation gets a view equal to what the
-- collector stored so far, so members are kept until each probe's next check-in replaces it.
INSERT INTO "conversation_views" ("conversation_id", "probe_id", "kind", "title", "members")
SELECT cv."id", a."probe_id", cv."kind", cv."title",
       (SELECT array_agg(m2."handle" ORDER BY m2."handle") FROM "conversation_members" m2 WHERE m2."conversation_id" = cv."id")
FROM "conversations" cv
JOIN "conversation_members" m ON m."conversation_id" = cv."id"
JOIN "accounts" a ON a."platform" = cv."platform" AND a."handle" = m."handle"
GROUP BY cv."id", a."probe_id"
ON CONFLICT DO NOTHING;
