ALTER TABLE "canaries" ADD COLUMN "events_pruned_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "canaries" ADD COLUMN "late_events_at" timestamp with time zone;--> statement-breakpoint
CREATE INDEX "canaries_unpruned_deadline_idx" ON "canaries" USING btree ("deadline_at") WHERE "canaries"."events_pruned_at" is null;--> statement-breakpoint
CREATE INDEX "canaries_late_events_idx" ON "canaries" USING btree ("late_events_at") WHERE "canaries"."late_events_at" is not null;--> statement-breakpoint
CREATE INDEX "events_lookalike_received_at_idx" ON "events" USING btree ("received_at") WHERE "events"."type" = 'received' and "events"."canary_id" is null;