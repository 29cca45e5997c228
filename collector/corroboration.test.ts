import { randomBytes, randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import type { FindingRecord } from '../protocol/research.ts';
import { corroboration, type EvidencePath } from './analysis/corroboration.ts';
import { buildApp } from './app.ts';
import { createCampaign, createTermList } from './db/campaigns.ts';
import { type CanaryInsert, insertCanaries } from './db/canaries.ts';
import { campaignsToJudge, findingsOfCampaign } from './db/findings.ts';
import { type Db, rows } from './db/open.ts';
import { recomputeCampaignFindings } from './findings.ts';
import { describeEachDb } from './test-support/db.ts';
import { TEST_ADMIN_TOKEN, TEST_HASH_KEY } from './test-support/probe.ts';

const path = (s: string, sa: number, r: string, ra: number): EvidencePath => ({
  senderProbeId: s,
  senderAsn: sa,
  recipientProbeId: r,
  recipientAsn: ra,
});

describe('corroboration (pure)', () => {
  it('counts one when a single probe, or probes of one network, gave all the evidence', () => {
    expect(corroboration([path('a', 1, 'a', 1)])).toEqual({ probes: 1, asns: 1, independent: 1 });
    expect(corroboration([path('a', 1, 'b', 1), path('c', 1, 'b', 1)])).toEqual({
      probes: 3,
      asns: 1,
      independent: 1,
    });
  });

  it('counts the networks that would all have to lie: one sender to many recipients is one', () => {
    expect(corroboration([path('s', 1, 'x', 2), path('s', 1, 'y', 3)]).independent).toBe(1);
    expect(corroboration([path('s', 1, 'x', 2), path('t', 4, 'y', 3)]).independent).toBe(2);
    // a probe on both sides of every pair is still alone
    expect(corroboration([path('a', 1, 'x', 2), path('y', 3, 'a', 1)]).independent).toBe(1);
    expect(
      corroboration([path('a', 1, 'a', 1), path('d', 2, 'd', 2), path('a', 1, 'd', 2)]).independent,
    ).toBe(2);
    expect(corroboration([]).independent).toBe(0);
  });

  it('stays a lower bound on graphs too large to search', () => {
    // 40 disjoint sender–recipient pairs: 40 networks must lie
    const many = Array.from({ length: 40 }, (_, i) => path(`s${i}`, 2 * i + 1, `r${i}`, 2 * i + 2));
    const c = corroboration(many);
    expect(c.asns).toBe(80);
    expect(c.independent).toBeGreaterThanOrEqual(4);
    expect(c.independent).toBeLessThanOrEqual(40);
  });
});

/**
 * Probes hold a US sender and a CN recipient each, all in one group; rounds send a test and
 * its control from every US sender given, and the censor drops the test for CN recipients.
 */
async function setup(db: Db, minIndependentProbes: number) {
  const tag = randomBytes(4).toString('hex');
  const handles: string[] = [];
  async function probe(asn: number) {
    const [p] = await rows<{ id: string }>(
      db,
      sql`insert into probes (public_key, country, asn, software_version)
          values (${`k-${tag}-${asn}`}, 'US', ${asn}, 'test') returning id`,
    );
    const acc: Record<'US' | 'CN', string> = { US: '', CN: '' };
    for (const region of ['US', 'CN'] as const) {
      const handle = `${region.toLowerCase()}-${asn}-${tag}`;
      handles.push(handle);
      const [a] = await rows<{ id: string }>(
        db,
        sql`insert into accounts (probe_id, platform, handle, region, adapter_name, adapter_version, state)
            values (${p?.id}::uuid, 'testbed', ${handle}, ${region}, 'testbed', '1', 'active') returning id`,
      );
      acc[region] = a?.id ?? '';
    }
    return { id: p?.id ?? '', acc };
  }
  const [conv] = await rows<{ id: string }>(
    db,
    sql`insert into conversations (platform, ref, kind) values ('testbed', ${`g-${tag}`}, 'group') returning id`,
  );
  const list = await createTermList(db, { name: `c-${tag}`, termSets: [['六四']] });
  const campaign = await createCampaign(db, {
    name: `corroboration-${tag}`,
    mode: 'isolate',
    termListIds: list ? [list.id] : [],
    conversations: { platform: 'testbed', refs: [`g-${tag}`] },
    cadenceCron: '0 0 1 1 *',
    deadlineSeconds: 10,
    termSetsPerRound: 1,
    minIndependentProbes,
    seed: tag,
    startsAt: new Date(Date.now() - 24 * 3600_000),
    endsAt: null,
  });
  async function round(at: Date, probes: { acc: Record<'US' | 'CN', string> }[]) {
    const roundId = randomUUID();
    // the canaries' deadline, which their outcomes carry (the partition key, decision 040)
    const deadline = new Date(at.getTime() + 10_000);
    await db.execute(sql`insert into rounds (id, campaign_id, round_at, seed, rng_algorithm)
      values (${roundId}::uuid, ${campaign.id}::uuid, ${at.toISOString()}::timestamptz, 's', 'x')`);
    const canaries: CanaryInsert[] = [];
    const outcomes: { canary: string; recipient: string; status: string }[] = [];
    for (const sender of probes) {
      const pairId = randomUUID();
      for (const kind of ['test', 'control'] as const) {
        const id = randomUUID();
        canaries.push({
          id,
          campaignId: campaign.id,
          roundId,
          kind,
          pairId,
          termSet: ['六四'],
          carriedTerms: ['六四'],
          text: `t ${id}`,
          nonce: `sd${randomBytes(6).toString('hex')}`,
          senderAccountId: sender.acc.US,
          conversationId: conv?.id ?? '',
          sendAt: at,
          deadlineAt: deadline,
          templateId: 'bare',
          templateVersion: '1',
          seed: 's',
        });
        for (const recipient of probes) {
          outcomes.push({
            canary: id,
            recipient: recipient.acc.CN,
            status: kind === 'test' ? 'missing' : 'delivered',
          });
        }
      }
    }
    await insertCanaries(db, canaries);
    for (const x of outcomes) {
      await db.execute(sql`insert into outcomes (canary_id, recipient_account_id, status, deadline_at, latency_ms, data_format_version)
        values (${x.canary}::uuid, ${x.recipient}::uuid, ${x.status}, ${deadline.toISOString()}::timestamptz,
                ${x.status === 'delivered' ? 200 : null}, 1)`);
    }
  }
  return { campaign, probe, round };
}

describeEachDb('findings need independent probes', (getDb) => {
  it('holds a finding at inconclusive while one probe gave all the evidence, settles it once a probe in another network corroborates, and the research API shows the counts', async () => {
    const { db } = getDb();
    const w = await setup(db, 2);
    const judged = (await campaignsToJudge(db, new Date(), 3600_000)).find((c) => c.id === w.campaign.id);
    expect(judged?.minIndependentProbes).toBe(2);
    const only = await w.probe(64601);
    const start = Date.now() - 5 * 3600_000;
    for (let i = 0; i < 24; i++) await w.round(new Date(start + i * 60_000), [only]);

    // with one independent probe asked for, this evidence settles `suppressed`
    await recomputeCampaignFindings(db, { ...judged!, minIndependentProbes: 1 }, new Date());
    const alone = (await findingsOfCampaign(db, w.campaign.id))[0];
    expect(alone).toMatchObject({ verdict: 'suppressed', settled: true });

    await recomputeCampaignFindings(db, judged!, new Date());
    const held = await findingsOfCampaign(db, w.campaign.id);
    expect(held).toHaveLength(1);
    expect(held[0]).toMatchObject({
      verdict: 'inconclusive',
      settled: false,
      independentProbes: {
        test: { probes: 1, asns: 1, independent: 1 },
        control: { probes: 1, asns: 1, independent: 1 },
      },
    });

    // a second probe, in another network, sends and receives in the same group
    const second = await w.probe(64602);
    for (let i = 24; i < 48; i++) await w.round(new Date(start + i * 60_000), [only, second]);
    await recomputeCampaignFindings(db, judged!, new Date());
    const corroborated = await findingsOfCampaign(db, w.campaign.id);
    expect(corroborated[0]).toMatchObject({
      verdict: 'suppressed',
      settled: true,
      independentProbes: {
        test: { probes: 2, asns: 2, independent: 2 },
        control: { probes: 2, asns: 2, independent: 2 },
      },
    });

    const app = await buildApp({
      db,
      config: { adminToken: TEST_ADMIN_TOKEN, hashKey: TEST_HASH_KEY, checkinIntervalMs: 60_000 },
    });
    try {
      const res = await app.inject({ method: 'GET', url: `/api/v1/findings?campaign=${w.campaign.id}` });
      expect(res.statusCode, res.body).toBe(200);
      const [f] = (res.json() as { findings: FindingRecord[] }).findings;
      expect(f?.verdict).toBe('suppressed');
      expect(f?.evidence.independent_probes).toEqual({
        test: { probes: 2, asns: 2, independent: 2 },
        control: { probes: 2, asns: 2, independent: 2 },
      });
    } finally {
      await app.close();
    }
  });

  it('a campaign is created with min_independent_probes through the admin API (default 1)', async () => {
    const { db } = getDb();
    const app = await buildApp({
      db,
      config: { adminToken: TEST_ADMIN_TOKEN, hashKey: TEST_HASH_KEY, checkinIntervalMs: 60_000 },
    });
    try {
      const auth = { authorization: `Bearer ${TEST_ADMIN_TOKEN}` };
      const list = await app.inject({
        method: 'POST',
        url: `/admin/v1/term-lists?name=${randomUUID()}`,
        headers: { ...auth, 'content-type': 'text/plain' },
        payload: '天气\n',
      });
      expect(list.statusCode, list.body).toBe(201);
      const base = {
        name: 'c',
        mode: 'monitor',
        term_list_ids: [list.json().term_list.id],
        conversations: {},
        cadence: '*/10 * * * *',
        deadline_seconds: 60,
      };
      const two = await app.inject({
        method: 'POST',
        url: '/admin/v1/campaigns',
        headers: auth,
        payload: { ...base, min_independent_probes: 2 },
      });
      expect(two.statusCode, two.body).toBe(201);
      expect(two.json().min_independent_probes).toBe(2);
      const dflt = await app.inject({
        method: 'POST',
        url: '/admin/v1/campaigns',
        headers: auth,
        payload: base,
      });
      expect(dflt.json().min_independent_probes).toBe(1);
      const zero = await app.inject({
        method: 'POST',
        url: '/admin/v1/campaigns',
        headers: auth,
        payload: { ...base, min_independent_probes: 0 },
      });
      expect(zero.statusCode).toBe(400);
    } finally {
      await app.close();
    }
  });
});
