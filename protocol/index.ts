/**
 * The wire protocol between probe and collector, and the measurement vocabulary the
 * dashboard shares: types and schemas only, no I/O. Request signing lives in
 * ./signing.ts (node:crypto), imported directly by probe and collector.
 */
export * from './admin.ts';
export * from './checkin.ts';
export * from './common.ts';
export * from './events.ts';
export * from './failures.ts';
export * from './fleet.ts';
export * from './nonce.ts';
export * from './outcomes.ts';
export * from './register.ts';
export * from './research.ts';
