ALTER TABLE "alerts" DROP CONSTRAINT "alerts_kind_check";--> statement-breakpoint
ALTER TABLE "probes" ADD COLUMN "storage_full_since" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "probes" ADD COLUMN "storage_code" text;--> statement-breakpoint
ALTER TABLE "alerts" ADD CONSTRAINT "alerts_kind_check" CHECK ("alerts"."kind" in ('finding_settled', 'finding_ended', 'probe_silent', 'dead_letters', 'probe_storage_full'));