-- drizzle-kit cannot name the old primary key; it is the default name of the inline one in 0000_init.sql.
ALTER TABLE "events" DROP CONSTRAINT "events_pkey";--> statement-breakpoint
ALTER TABLE "events" ADD CONSTRAINT "events_probe_event_pk" PRIMARY KEY("probe_id","event_id");--> statement-breakpoint
CREATE INDEX "events_unknown_nonce_idx" ON "events" USING btree ("probe_id","received_at") WHERE "events"."type" = 'received' and "events"."canary_id" is null;