/**
 * A small measurement world for tests: a US probe holding `alice`, a CN probe holding
 * `bob` and an AU probe-held `carol`, all in one group on the `testbed` platform, and a
 * campaign to hang canaries on. Handles carry a random suffix so tests share a database.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll } from 'vitest';
import { type AppOptions, buildApp } from '../app.ts';
import { findAccounts, findConversationId } from '../db/accounts.ts';
import { createCampaign } from '../db/campaigns.ts';
import { insertCanaries } from '../db/canaries.ts';
import type { Db } from '../db/open.ts';
import {
  account,
  checkin,
  enrollProbe,
  TEST_ADMIN_TOKEN,
  TEST_HASH_KEY,
  type TestProbe,
  UNLIMITED_CAPACITY,
} from './probe.ts';

export interface World {
  us: TestProbe;
  cn: TestProbe;
  handles: { alice: string; bob: string; carol: string };
  accountIds: { alice: string; bob: string; carol: string };
  group: string;
  campaignId: string;
  makeCanary(input?: {
    sendAt?: Date;
    deadlineAt?: Date;
    text?: string;
    kind?: 'test' | 'control';
    pairId?: string;
  }): Promise<Canary>;
}

export interface Canary {
  id: string;
  nonce: string;
  text: string;
  deadlineAt: Date;
}

export function newNonce(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  return `sd${[...randomBytes(12)].map((b) => alphabet[b % 36]).join('')}`;
}

export async function buildWorld(app: FastifyInstance, db: Db): Promise<World> {
  const tag = randomBytes(4).toString('hex');
  const handles = { alice: `alice-${tag}`, bob: `bob-${tag}`, carol: `carol-${tag}` };
  const group = `group-${tag}`;
  const members = Object.values(handles);
  const conv = { platform: 'testbed', ref: group, kind: 'group' as const, members };
  const us = await enrollProbe(app, { country: 'US' });
  const cn = await enrollProbe(app, { country: 'CN' });
  // The world's accounts are simulated (test-support/censor.ts sends whatever is due): they
  // report a capacity no round reaches, so the budget (collector/capacity.ts) never limits them.
  const unlimited = { capacity: UNLIMITED_CAPACITY };
  await checkin(app, us, [{ ...account('testbed', handles.alice, 'US'), ...unlimited }], [conv]);
  await checkin(
    app,
    cn,
    [
      { ...account('testbed', handles.bob, 'CN'), ...unlimited },
      { ...account('testbed', handles.carol, 'AU'), ...unlimited },
    ],
    [conv],
  );
  const found = await findAccounts(
    db,
    members.map((h) => ({ platform: 'testbed', handle: h })),
  );
  const idOf = (h: string) => {
    const a = found.find((f) => f.handle === h);
    if (!a) throw new Error(`account ${h} missing`);
    return a.id;
  };
  const conversationId = await findConversationId(db, 'testbed', group);
  if (!conversationId) throw new Error('conversation missing');
  const campaign = await createCampaign(db, {
    name: `test-${tag}`,
    mode: 'monitor',
    termListIds: [],
    conversations: { platform: 'testbed' },
    cadenceCron: '0 * * * *',
    deadlineSeconds: 60,
    termSetsPerRound: 1,
    seed: tag,
    startsAt: new Date(),
    endsAt: null,
  });
  const accountIds = { alice: idOf(handles.alice), bob: idOf(handles.bob), carol: idOf(handles.carol) };
  return {
    us,
    cn,
    handles,
    accountIds,
    group,
    campaignId: campaign.id,
    async makeCanary(input = {}) {
      const nonce = newNonce();
      const id = randomUUID();
      const sendAt = input.sendAt ?? new Date();
      const deadlineAt = input.deadlineAt ?? new Date(sendAt.getTime() + 60_000);
      const text = input.text ?? `今天 天气 很好 ${nonce}`;
      await insertCanaries(db, [
        {
          id,
          campaignId: campaign.id,
          roundId: null,
          kind: input.kind ?? 'test',
          pairId: input.pairId ?? randomUUID(),
          termSet: ['天气'],
          carriedTerms: ['天气'],
          text,
          nonce,
          senderAccountId: accountIds.alice,
          conversationId,
          sendAt,
          deadlineAt,
          templateId: 'test',
          templateVersion: '1',
          seed: tag,
        },
      ]);
      return { id, nonce, text, deadlineAt };
    },
  };
}

const adapter = { name: 'testbed', version: '0.0.1' };

export function sentEvent(
  w: World,
  c: Canary,
  input: { at?: Date; offsetMs?: number; text?: string; eventId?: string } = {},
) {
  return {
    type: 'sent' as const,
    event_id: input.eventId ?? randomUUID(),
    platform: 'testbed',
    account: w.handles.alice,
    conversation: w.group,
    at: (input.at ?? new Date()).toISOString(),
    clock_offset_ms: input.offsetMs ?? 0,
    adapter,
    canary_id: c.id,
    text: input.text ?? c.text,
  };
}

export function receivedEvent(
  w: World,
  recipient: 'bob' | 'carol',
  c: Canary,
  input: { at?: Date; offsetMs?: number; text?: string; eventId?: string } = {},
) {
  return {
    type: 'received' as const,
    event_id: input.eventId ?? randomUUID(),
    platform: 'testbed',
    account: w.handles[recipient],
    conversation: w.group,
    at: (input.at ?? new Date()).toISOString(),
    clock_offset_ms: input.offsetMs ?? 0,
    adapter,
    nonce: c.nonce,
    text: input.text ?? c.text,
  };
}

export function rejectedEvent(w: World, c: Canary, notice = 'This message contains inappropriate content') {
  return {
    type: 'rejected' as const,
    event_id: randomUUID(),
    platform: 'testbed',
    account: w.handles.alice,
    conversation: w.group,
    at: new Date().toISOString(),
    clock_offset_ms: 0,
    adapter,
    canary_id: c.id,
    failure: 'notice_shown' as const,
    notice,
  };
}

/**
 * For a describeEachDb suite: before its tests, a collector app on the suite's database and a
 * World in it, handed to `set`; the app is closed after them.
 */
export function onAppWorld(
  getDb: () => { db: Db },
  set: (app: FastifyInstance, w: World) => void,
  extra: Partial<Omit<AppOptions, 'db' | 'config'>> = {},
): void {
  let app: FastifyInstance | undefined;
  beforeAll(async () => {
    app = await buildApp({
      ...extra,
      db: getDb().db,
      config: { adminToken: TEST_ADMIN_TOKEN, hashKey: TEST_HASH_KEY, checkinIntervalMs: 60_000 },
    });
    set(app, await buildWorld(app, getDb().db));
  });
  afterAll(async () => {
    await app?.close();
  });
}
