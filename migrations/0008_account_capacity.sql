ALTER TABLE "accounts" ADD COLUMN "capacity" jsonb;--> statement-breakpoint
ALTER TABLE "accounts" ADD COLUMN "capacity_at" timestamp with time zone;--> statement-breakpoint
CREATE INDEX "canaries_sender_deadline_idx" ON "canaries" USING btree ("sender_account_id","deadline_at");