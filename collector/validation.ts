/** Schema validation outside fastify's route schemas, with messages that name the field. */
import type { TSchema } from 'typebox';
import { Compile } from 'typebox/compile';
import { FailedEvent, type ProbeEvent, ReceivedEvent, RejectedEvent, SentEvent } from '../protocol/index.ts';

export interface SchemaError {
  instancePath: string;
  message: string;
  keyword?: string;
  params?: unknown;
}

/**
 * Turns schema errors into one line: `/events/3/at: must match format "date-time"`.
 * An unexpected property is named as its own path.
 */
export function describeErrors(errors: readonly SchemaError[], prefix = ''): string {
  const lines: string[] = [];
  for (const e of errors) {
    // typebox reports an extra property twice (as `false` schema and as additionalProperties).
    if (e.keyword === 'boolean') continue;
    if (e.keyword === 'additionalProperties') {
      const names = (e.params as { additionalProperties?: string[] } | undefined)?.additionalProperties ?? [];
      for (const n of names) lines.push(`${prefix}${e.instancePath}/${n}: is not allowed`);
      continue;
    }
    lines.push(`${prefix}${e.instancePath || ''}: ${e.message}`);
  }
  const unique = [...new Set(lines)];
  const shown = unique.slice(0, 3).join('; ');
  return unique.length > 3 ? `${shown}; and ${unique.length - 3} more` : shown || `${prefix}: invalid`;
}

const eventValidators = {
  sent: Compile(SentEvent),
  rejected: Compile(RejectedEvent),
  failed: Compile(FailedEvent),
  received: Compile(ReceivedEvent),
} as const;

/** Validates one event on its own; the reason names the field under `prefix`. */
export function validateEvent(
  value: unknown,
  prefix: string,
): { ok: true; event: ProbeEvent } | { ok: false; reason: string } {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, reason: `${prefix}: must be an object` };
  }
  const type = (value as { type?: unknown }).type;
  if (typeof type !== 'string' || !Object.hasOwn(eventValidators, type)) {
    return { ok: false, reason: `${prefix}/type: must be one of sent, rejected, failed, received` };
  }
  const validator = eventValidators[type as keyof typeof eventValidators];
  if (validator.Check(value)) return { ok: true, event: value as ProbeEvent };
  return { ok: false, reason: describeErrors(validator.Errors(value) as SchemaError[], prefix) };
}

/** A compiled checker for any schema (admin bodies parsed by hand, e.g. text uploads). */
export function checker<T extends TSchema>(schema: T) {
  return Compile(schema);
}
