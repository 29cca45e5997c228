/**
 * Tests only: a collector app with the research API, and a measurement world filled
 * through the real ingest path (canaries by repository, events signed and POSTed with
 * app.inject). Every outcome the world should produce is also modelled in `expected`,
 * so tests check the API against an independent account of the data.
 *
 * Probes: US (alice US), CN (bob CN, erin CN), AU (carol AU). A group of all four and a
 * direct chat alice–bob. Senders: alice, and bob in the group. Rules, per recipient:
 * - SENSITIVE test canaries never reach CN recipients in the group (silent drop)
 * - DELAYED test canaries arrive after the deadline
 * - XSS test canaries never arrive anywhere
 * - MASKED test canaries arrive altered at CN recipients
 * - NOTICE test canaries are rejected at the sender
 * - every 7th canary's receipt at carol is lost (background loss, tests and controls)
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { LIMITS } from '../../protocol/index.ts';
import { buildApp } from '../app.ts';
import { findAccounts, findConversationId } from '../db/accounts.ts';
import { createCampaign } from '../db/campaigns.ts';
import { type CanaryInsert, insertCanaries } from '../db/canaries.ts';
import type { Db } from '../db/open.ts';
import type { RateLimitOptions } from '../http/rate-limit.ts';
import {
  account,
  checkin,
  enrollProbe,
  signedPost,
  TEST_ADMIN_TOKEN,
  TEST_HASH_KEY,
  type TestProbe,
} from '../test-support/probe.ts';

export const SENSITIVE = ['六四', '天安门'];
export const DELAYED = ['维权'];
export const XSS = [
  `<img src=x onerror="window.__xss=1;alert(1)">`,
  `'; DROP TABLE outcomes; --`,
  `" OR 1=1 --`,
];
export const MASKED = ['习近平'];
export const NOTICE = ['法轮功'];
export const BENIGN = ['天气'];
export const TERM_SETS = [SENSITIVE, DELAYED, XSS, MASKED, NOTICE, BENIGN];

/** The collector app (app.ts), with test rate limits and dashboard folder. */
export async function buildResearchApp(
  db: Db,
  options: { rateLimit?: RateLimitOptions; dashboardDir?: string; logger?: Logger } = {},
): Promise<FastifyInstance> {
  return buildApp({
    db,
    config: { adminToken: TEST_ADMIN_TOKEN, hashKey: TEST_HASH_KEY, checkinIntervalMs: 60_000 },
    rateLimit: options.rateLimit ?? { max: 100_000, timeWindowMs: 60_000 },
    ...(options.dashboardDir ? { dashboardDir: options.dashboardDir } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
  });
}

type Person = 'alice' | 'bob' | 'carol' | 'erin';
const REGION: Record<Person, string> = { alice: 'US', bob: 'CN', carol: 'AU', erin: 'CN' };

export interface ExpectedOutcome {
  canaryId: string;
  recipient: Person;
  recipientAccountId: string;
  recipientProbeId: string;
  senderProbeId: string;
  sender: Person;
  kind: 'test' | 'control';
  termSet: string[];
  status: 'delivered' | 'delayed' | 'missing' | 'altered' | 'rejected';
  senderRegion: string;
  recipientRegion: string;
  conversationKind: 'direct' | 'group';
  sendAt: Date;
  latencyMs: number | null;
}

export interface ResearchWorld {
  campaignId: string;
  probes: { us: TestProbe; cn: TestProbe; au: TestProbe };
  accountIds: Record<Person, string>;
  expected: ExpectedOutcome[];
  /** First and last send time. */
  start: Date;
  end: Date;
  /** Ingests one more round of canaries at `sendAt` (concurrent-insert tests). */
  addRound(sendAt: Date): Promise<ExpectedOutcome[]>;
}

interface Plan {
  canary: CanaryInsert;
  sender: Person;
  recipients: Person[];
  conversationKind: 'direct' | 'group';
  ref: string;
}

export async function buildResearchWorld(
  app: FastifyInstance,
  db: Db,
  options: { hours?: number; end?: Date } = {},
): Promise<ResearchWorld> {
  const tag = randomBytes(4).toString('hex');
  const handle = (p: Person) => `${p}-${tag}`;
  const group = `group-${tag}`;
  const direct = `direct-${tag}`;
  const conversations = [
    {
      platform: 'testbed',
      ref: group,
      kind: 'group' as const,
      members: (['alice', 'bob', 'carol', 'erin'] as const).map(handle),
    },
    { platform: 'testbed', ref: direct, kind: 'direct' as const, members: [handle('alice'), handle('bob')] },
  ];
  const us = await enrollProbe(app, { country: 'US', asn: 64500 });
  const cn = await enrollProbe(app, { country: 'CN', asn: 4134 });
  const au = await enrollProbe(app, { country: 'AU', asn: 1221 });
  const probeOf: Record<Person, TestProbe> = { alice: us, bob: cn, erin: cn, carol: au };
  await checkin(app, us, [account('testbed', handle('alice'), 'US')], conversations);
  await checkin(
    app,
    cn,
    [account('testbed', handle('bob'), 'CN'), account('testbed', handle('erin'), 'CN')],
    conversations,
  );
  await checkin(app, au, [account('testbed', handle('carol'), 'AU')], [conversations[0]!]);
  const found = await findAccounts(
    db,
    (['alice', 'bob', 'carol', 'erin'] as const).map((p) => ({ platform: 'testbed', handle: handle(p) })),
  );
  const idOf = (p: Person) => {
    const a = found.find((f) => f.handle === handle(p));
    if (!a) throw new Error(`account ${p} missing`);
    return a.id;
  };
  const accountIds = { alice: idOf('alice'), bob: idOf('bob'), carol: idOf('carol'), erin: idOf('erin') };
  const groupId = await findConversationId(db, 'testbed', group);
  const directId = await findConversationId(db, 'testbed', direct);
  if (!groupId || !directId) throw new Error('conversations missing');
  const campaign = await createCampaign(db, {
    name: `research-${tag}`,
    mode: 'monitor',
    termListIds: [],
    conversations: { platform: 'testbed' },
    cadenceCron: '0 * * * *',
    deadlineSeconds: 60,
    termSetsPerRound: TERM_SETS.length,
    seed: tag,
    startsAt: new Date(0),
    endsAt: null,
  });

  let counter = 0;
  function plan(sendAt: Date): Plan[] {
    const plans: Plan[] = [];
    const routes = [
      {
        sender: 'alice' as const,
        ref: group,
        id: groupId!,
        kind: 'group' as const,
        to: ['bob', 'carol', 'erin'] as Person[],
      },
      {
        sender: 'bob' as const,
        ref: group,
        id: groupId!,
        kind: 'group' as const,
        to: ['alice', 'carol', 'erin'] as Person[],
      },
      {
        sender: 'alice' as const,
        ref: direct,
        id: directId!,
        kind: 'direct' as const,
        to: ['bob'] as Person[],
      },
    ];
    for (const terms of TERM_SETS) {
      for (const r of routes) {
        const pairId = randomUUID();
        for (const kind of ['test', 'control'] as const) {
          counter += 1;
          const nonce = `sd${tag}${String(counter).padStart(4, '0')}`;
          const body = kind === 'test' ? terms.join(' ') : '今天 天气 很好';
          const at = new Date(sendAt.getTime() + plans.length * 1000);
          plans.push({
            canary: {
              id: randomUUID(),
              campaignId: campaign.id,
              roundId: null,
              kind,
              pairId,
              termSet: terms,
              carriedTerms: kind === 'test' ? terms : ['天气'],
              text: `通知 ${body} ${nonce}`,
              nonce,
              senderAccountId: accountIds[r.sender],
              conversationId: r.id,
              sendAt: at,
              deadlineAt: new Date(at.getTime() + 60_000),
              templateId: 'research',
              templateVersion: 'research-1',
              seed: tag,
            },
            sender: r.sender,
            recipients: r.to,
            conversationKind: r.kind,
            ref: r.ref,
          });
        }
      }
    }
    return plans;
  }

  /** The censorship rules of this world, per canary and recipient. */
  function fate(
    p: Plan,
    to: Person,
    n: number,
  ): { status: ExpectedOutcome['status']; latencyMs: number | null } {
    const test = p.canary.kind === 'test';
    const terms = p.canary.termSet;
    if (test && terms === NOTICE) return { status: 'rejected', latencyMs: null };
    if (n % 7 === 0 && to === 'carol') return { status: 'missing', latencyMs: null };
    if (test && terms === XSS) return { status: 'missing', latencyMs: null };
    if (test && terms === SENSITIVE && p.conversationKind === 'group' && REGION[to] === 'CN') {
      return { status: 'missing', latencyMs: null };
    }
    if (test && terms === DELAYED) return { status: 'delayed', latencyMs: 90_000 + (n % 5) * 1000 };
    const latencyMs = 200 + ((n * 137) % 1800);
    if (test && terms === MASKED && REGION[to] === 'CN') return { status: 'altered', latencyMs };
    return { status: 'delivered', latencyMs };
  }

  const adapter = { name: 'testbed', version: '0.0.1' };
  async function ingest(plans: Plan[]): Promise<ExpectedOutcome[]> {
    await insertCanaries(
      db,
      plans.map((p) => p.canary),
    );
    const batches = new Map<TestProbe, unknown[]>();
    const push = (probe: TestProbe, e: unknown) => batches.set(probe, [...(batches.get(probe) ?? []), e]);
    const expected: ExpectedOutcome[] = [];
    plans.forEach((p, i) => {
      const c = p.canary;
      const base = { platform: 'testbed', conversation: p.ref, clock_offset_ms: 0, adapter };
      const rejected = c.kind === 'test' && c.termSet === NOTICE;
      push(probeOf[p.sender], {
        ...base,
        type: rejected ? 'rejected' : 'sent',
        event_id: randomUUID(),
        account: handle(p.sender),
        at: c.sendAt.toISOString(),
        canary_id: c.id,
        ...(rejected
          ? { failure: 'notice_shown', notice: 'This message contains inappropriate content' }
          : { text: c.text }),
      });
      for (const to of p.recipients) {
        const f = fate(p, to, i + counter);
        expected.push({
          canaryId: c.id,
          recipient: to,
          recipientAccountId: accountIds[to],
          recipientProbeId: probeOf[to].id,
          senderProbeId: probeOf[p.sender].id,
          sender: p.sender,
          kind: c.kind,
          termSet: c.termSet,
          status: f.status,
          senderRegion: REGION[p.sender],
          recipientRegion: REGION[to],
          conversationKind: p.conversationKind,
          sendAt: c.sendAt,
          latencyMs: f.latencyMs,
        });
        if (f.latencyMs === null) continue;
        push(probeOf[to], {
          ...base,
          type: 'received',
          event_id: randomUUID(),
          account: handle(to),
          at: new Date(c.sendAt.getTime() + f.latencyMs).toISOString(),
          nonce: c.nonce,
          text: f.status === 'altered' ? c.text.replace(MASKED[0]!, '***') : c.text,
        });
      }
    });
    for (const [probe, events] of batches) {
      for (let i = 0; i < events.length; i += LIMITS.eventsPerBatch) {
        const res = await signedPost(app, probe, '/probe/v1/events', {
          protocol: 1,
          events: events.slice(i, i + LIMITS.eventsPerBatch),
        });
        const refused = (res.json() as { results?: { status: string; reason?: string }[] }).results?.filter(
          (r) => r.status === 'refused',
        );
        if (res.statusCode !== 200 || refused?.length)
          throw new Error(`ingest: ${res.statusCode} ${res.body.slice(0, 500)}`);
      }
    }
    return expected;
  }

  const hours = options.hours ?? 6;
  const end = options.end ?? new Date(Math.floor(Date.now() / 3_600_000) * 3_600_000 - 3_600_000);
  const start = new Date(end.getTime() - (hours - 1) * 3_600_000);
  const expected: ExpectedOutcome[] = [];
  for (let h = 0; h < hours; h++)
    expected.push(...(await ingest(plan(new Date(start.getTime() + h * 3_600_000)))));
  return {
    campaignId: campaign.id,
    probes: { us, cn, au },
    accountIds,
    expected,
    start,
    end,
    async addRound(sendAt) {
      const more = await ingest(plan(sendAt));
      expected.push(...more);
      return more;
    },
  };
}
