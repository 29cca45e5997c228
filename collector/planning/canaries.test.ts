import { describe, expect, it } from 'vitest';
import { findNonce, findNonces, GENERATED_NONCE_FORMS, nonceForm } from '../../protocol/nonce.ts';
import {
  avoidList,
  buildCanaryText,
  type CanaryTemplate,
  checkTemplateSafety,
  newNonce,
  type PlanConversation,
  type PlanRoundInput,
  planRound,
  roundSeed,
  TEMPLATES,
} from './canaries.ts';
import { controlVocabulary } from './controls.ts';
import { findTriggers, matchKey, triggerIndex } from './matching.ts';
import { createRng, randomInt } from './rng.ts';
import { detectScript } from './scripts.ts';
import { allCitizenLabSets, citizenLabPresent, loadCitizenLab, skipNotice } from './testData.ts';

const group: PlanConversation = {
  ref: 'grp-1',
  kind: 'group',
  platform: 'testbed',
  members: [
    { handle: 'us1', region: 'US' },
    { handle: 'us2', region: 'US' },
    { handle: 'cn1', region: 'CN' },
    { handle: 'cn2', region: 'CN' },
    { handle: 'au1', region: 'AU' },
  ],
};
const direct: PlanConversation = {
  ref: 'dm-1',
  kind: 'direct',
  platform: 'testbed',
  members: [
    { handle: 'us1', region: 'US' },
    { handle: 'cn1', region: 'CN' },
  ],
};

function input(overrides: Partial<PlanRoundInput> = {}): PlanRoundInput {
  return {
    campaignId: 'c0ffee00-0000-4000-8000-000000000001',
    roundAt: '2026-06-04T00:00:00.000Z',
    seed: 'round-1',
    termSets: [['六四', '刘晓波'], ['法輪功'], ['Jinping']],
    conversations: [group, direct],
    spreadSeconds: 600,
    deadlineSeconds: 300,
    ...overrides,
  };
}

describe('newNonce', () => {
  it('draws every nonce form, each found again and free of tested terms', () => {
    const rng = createRng(5);
    const avoid = triggerIndex(['a', 'e', 'i', 'o', 'u', '1']);
    const forms = new Set<string>();
    for (let i = 0; i < 300; i++) {
      const n = newNonce(rng, avoid);
      const found = findNonce(`x ${n} y`);
      expect(found?.nonce).toBe(n);
      forms.add(found!.form);
      expect(matchKey(n)).not.toMatch(/[aeiou1]/);
    }
    expect([...forms].sort()).toEqual([...GENERATED_NONCE_FORMS].sort());
  });

  it('draws the form it is asked for', () => {
    const rng = createRng(6);
    for (const form of GENERATED_NONCE_FORMS) expect(nonceForm(newNonce(rng, undefined, form))).toBe(form);
  });
});

describe('buildCanaryText', () => {
  it('puts nonce, padding and terms in the pattern and leaves $ in terms alone', () => {
    const t: CanaryTemplate = {
      id: 'x',
      version: 1,
      pattern: '{nonce} {padding}: {terms}',
      joiner: ' ',
      padding: ['tea'],
    };
    expect(buildCanaryText(t, ['a$&', 'b'], 'sd000000000000')).toBe('sd000000000000 tea: a$& b');
  });
});

describe('checkTemplateSafety', () => {
  it('reports a template, padding or vocabulary word that contains a tested term', () => {
    const bad: CanaryTemplate = {
      id: 'bad',
      version: 1,
      pattern: '{nonce} 天安门 {terms}',
      joiner: ' ',
      padding: [],
    };
    const padded: CanaryTemplate = {
      id: 'p',
      version: 1,
      pattern: '{nonce} {padding} {terms}',
      joiner: ' ',
      padding: ['六 四'],
    };
    const r = checkTemplateSafety([bad, padded], ['天安门', '六四'], { vocabulary: ['rain', 'XI jinping'] });
    expect(r.ok).toBe(false);
    expect(r.problems).toEqual(
      expect.arrayContaining([
        { where: 'template', source: 'bad', term: '天安门' },
        { where: 'padding', source: '六 四', term: '六四' },
      ]),
    );
    expect(checkTemplateSafety([], ['xi'], { vocabulary: ['XI jinping'] }).problems).toEqual([
      { where: 'vocabulary', source: 'XI jinping', term: 'xi' },
    ]);
  });

  it('does not match across a term slot', () => {
    const t: CanaryTemplate = {
      id: 's',
      version: 1,
      pattern: '六{terms}四 {nonce}',
      joiner: ' ',
      padding: [],
    };
    expect(checkTemplateSafety([t], ['六四'], { vocabulary: [] }).ok).toBe(true);
  });
});

describe.skipIf(!citizenLabPresent)(`safety against the Citizen Lab lists${skipNotice}`, () => {
  it('finds no tested term of the 709 list (or any other list) in templates, padding or control vocabulary', () => {
    const list709 = loadCitizenLab('wechat-709crackdown.csv').termSets.flatMap((s) => s.terms);
    expect(list709.length).toBeGreaterThan(2000);
    const r709 = checkTemplateSafety(TEMPLATES, list709);
    expect(r709.problems).toEqual([]);
    const rAll = checkTemplateSafety(
      TEMPLATES,
      allCitizenLabSets().flatMap((s) => s.terms),
    );
    expect(rAll.problems).toEqual([]);
  });

  it('plans the whole 709 list with control texts free of every listed term', () => {
    const sets = loadCitizenLab('wechat-709crackdown.csv').termSets.map((s) => s.terms);
    const allTerms = allCitizenLabSets().flatMap((s) => s.terms);
    const plan = planRound(input({ termSets: sets, conversations: [direct], avoid: allTerms, seed: 'full' }));
    expect(plan.canaries).toHaveLength(sets.length * 2 * 2);
    const index = triggerIndex(allTerms);
    for (const c of plan.canaries.filter((k) => k.kind === 'control'))
      expect(findTriggers(c.text, index)).toEqual([]);
    for (const c of plan.canaries.filter((k) => k.kind === 'test')) {
      for (const t of c.terms) expect(matchKey(c.text)).toContain(matchKey(t));
    }
  });
});

describe('planRound', () => {
  it('plans the same from a list built once with avoidList as from the terms, per set and for a set not listed', () => {
    const list = [...allCitizenLabSets().flatMap((x) => x.terms), 'ＪＩＮＰＩＮＧ', '六四', '刘晓波'];
    const built = avoidList(list);
    const sets = [['六四', '刘晓波'], ['法輪功'], ['Jinping'], ['not listed']];
    for (const [i, set] of sets.entries()) {
      const one = { termSets: [set], seed: `step:${i}` };
      expect(planRound(input({ ...one, avoid: built }))).toEqual(planRound(input({ ...one, avoid: list })));
    }
    expect(planRound(input({ avoid: built }))).toEqual(planRound(input({ avoid: list })));
  });

  it('is deterministic for a seed and differs for another seed', () => {
    const a = planRound(input());
    expect(planRound(input())).toEqual(a);
    const b = planRound(input({ seed: 'round-2' }));
    expect(b.canaries.map((c) => c.text)).not.toEqual(a.canaries.map((c) => c.text));
    expect(b.canaries.map((c) => c.nonce)).not.toEqual(a.canaries.map((c) => c.nonce));
    expect(a.seed).toBe('round-1');
    expect(a.rng).toBe('sfc32+cyrb128');
  });

  it('pairs every test with one control of the same template, sender, conversation and window', () => {
    const plan = planRound(input());
    const start = Date.parse('2026-06-04T00:00:00.000Z');
    const byPair = new Map<string, typeof plan.canaries>();
    for (const c of plan.canaries) byPair.set(c.pairId, [...(byPair.get(c.pairId) ?? []), c]);
    expect(byPair.size).toBe(plan.canaries.length / 2);
    for (const [, pair] of byPair) {
      expect(pair.map((c) => c.kind).sort()).toEqual(['control', 'test']);
      const [x, y] = pair;
      if (!x || !y) throw new Error('pair incomplete');
      expect(y.templateId).toBe(x.templateId);
      expect(y.sender).toEqual(x.sender);
      expect(y.conversation).toEqual(x.conversation);
      expect(y.termSetKey).toBe(x.termSetKey);
      const test = x.kind === 'test' ? x : y;
      const control = x.kind === 'test' ? y : x;
      expect([...control.text].length).toBe([...test.text].length);
      control.terms.forEach((t, i) => {
        expect(detectScript(t)).toBe(detectScript(test.terms[i] as string));
      });
      for (const c of pair) {
        const at = Date.parse(c.sendAt);
        expect(at).toBeGreaterThanOrEqual(start);
        expect(at).toBeLessThan(start + 600_000);
        expect(Date.parse(c.deadlineAt) - at).toBe(300_000);
      }
    }
  });

  it('gives unique nonces that the probe finds in the text', () => {
    const plan = planRound(input());
    const nonces = plan.canaries.map((c) => c.nonce);
    expect(new Set(nonces).size).toBe(nonces.length);
    for (const c of plan.canaries) expect(findNonce(c.text)?.nonce).toBe(c.nonce);
    expect(new Set(plan.canaries.map((c) => c.canaryId)).size).toBe(nonces.length);
  });

  it('covers each sender region of a conversation for every term set', () => {
    const plan = planRound(input());
    for (const ts of ['六四 + 刘晓波', 'Jinping', '法輪功']) {
      const regions = plan.canaries
        .filter((c) => c.kind === 'test' && c.conversation.ref === 'grp-1' && c.termSetKey === ts)
        .map((c) => c.sender.region)
        .sort();
      expect(regions).toEqual(['AU', 'CN', 'US']);
    }
    const dm = plan.canaries.filter((c) => c.conversation.ref === 'dm-1' && c.kind === 'test');
    expect(dm).toHaveLength(3 * 2);
    for (const c of dm) expect(c.recipients.map((r) => r.handle)).not.toContain(c.sender.handle);
  });

  it('honours eligible senders and perRegion, and skips single-member conversations', () => {
    const plan = planRound(
      input({
        termSets: [['六四']],
        senders: { eligible: ['us1', 'us2', 'cn1'], perRegion: 2 },
        conversations: [
          group,
          { ref: 'solo', kind: 'group', platform: 'testbed', members: [{ handle: 'x', region: 'US' }] },
        ],
      }),
    );
    const senders = plan.canaries
      .filter((c) => c.kind === 'test')
      .map((c) => c.sender.handle)
      .sort();
    expect(senders).toEqual(['cn1', 'us1', 'us2']);
    expect(plan.skipped).toEqual([{ conversation: 'solo', reason: 'fewer than two members' }]);
  });

  it('skips a term set it cannot plan and plans the rest, never using padding that carries a tested term', () => {
    for (const seed of ['s1', 's2', 's3', 's4', 's5']) {
      // "a": every control word contains it; "s": every nonce does; 天气: in the padding 明天天气晴朗
      const plan = planRound(input({ seed, termSets: [['a'], ['s'], ['天气']], conversations: [group] }));
      const tested = new Set(plan.canaries.map((c) => c.testTerms.join('+')));
      expect([...tested]).toEqual(['天气']);
      for (const c of plan.canaries.filter((x) => x.kind === 'control')) expect(c.text).not.toContain('天气');
      const skipped = plan.skipped.map((x) => x.termSet?.join('+'));
      expect(skipped).toContain('a');
      expect(skipped).toContain('s');
      expect(skipped).not.toContain('天气');
    }
  });

  it('randomises the order: tests do not always go first', () => {
    const plan = planRound(input());
    const orders = plan.canaries.map((c) => c.order);
    expect(orders).toEqual([...orders].sort((p, q) => p - q));
    const firstOfPair = new Map<string, string>();
    for (const c of plan.canaries) if (!firstOfPair.has(c.pairId)) firstOfPair.set(c.pairId, c.kind);
    expect(new Set(firstOfPair.values())).toEqual(new Set(['test', 'control']));
    const times = plan.canaries.map((c) => Date.parse(c.sendAt));
    expect(times).toEqual([...times].sort((p, q) => p - q));
  });

  it('derives a per-round seed every collector agrees on and rejects a bad window', () => {
    expect(roundSeed('c', '2026-06-04T00:00:00Z')).toBe('c@2026-06-04T00:00:00.000Z');
    expect(() => planRound(input({ deadlineSeconds: 0 }))).toThrow(RangeError);
    expect(() => planRound(input({ roundAt: 'nope' }))).toThrow(RangeError);
    expect(() => planRound(input({ termSets: [[' ']] }))).toThrow(RangeError);
  });
});

describe('nonce forms in plans', () => {
  it('gives a test and its control nonces of one form, and varies the form across pairs', () => {
    const plan = planRound(input({ seed: 'forms' }));
    const byPair = new Map<string, string[]>();
    for (const c of plan.canaries)
      byPair.set(c.pairId, [...(byPair.get(c.pairId) ?? []), nonceForm(c.nonce)!]);
    for (const forms of byPair.values()) expect(new Set(forms).size).toBe(1);
    const used = new Set([...byPair.values()].map((f) => f[0]));
    expect(used.size).toBeGreaterThan(1);
  });

  it('takes the same forms for the same seed', () => {
    const a = planRound(input({ seed: 'same' })).canaries.map((c) => c.nonce);
    const b = planRound(input({ seed: 'same' })).canaries.map((c) => c.nonce);
    expect(a).toEqual(b);
  });
});

describe.skipIf(!citizenLabPresent)(`nonce forms against real text${skipNotice}`, () => {
  it('round-trips every form through every template and padding with listed terms', () => {
    const sets = allCitizenLabSets();
    const rng = createRng('round-trip');
    let checked = 0;
    for (const form of GENERATED_NONCE_FORMS) {
      for (const template of TEMPLATES) {
        const paddings = Math.max(1, template.padding.length);
        for (let p = 0; p < paddings; p++) {
          const set = sets[randomInt(rng, sets.length)]!;
          const n = newNonce(rng, triggerIndex(set.terms), form);
          const text = buildCanaryText(template, set.terms, n, { padding: p });
          expect(findNonces(text)).toEqual([{ nonce: n, form, index: text.indexOf(n) }]);
          checked += 1;
        }
      }
    }
    expect(checked).toBeGreaterThan(20);
  });

  it('draws nonces free of every listed term, in every form', () => {
    const avoid = triggerIndex(allCitizenLabSets().flatMap((s) => s.terms));
    const rng = createRng('free');
    for (const form of GENERATED_NONCE_FORMS) {
      for (let i = 0; i < 200; i++) expect(findTriggers(newNonce(rng, avoid, form), avoid)).toEqual([]);
    }
  });

  it('finds no nonce in ordinary text: the lists, templates, padding, controls and chat', () => {
    const lists = [
      'wechat-one-app-two-systems.csv',
      'wechat-709crackdown.csv',
      'wechat-liu-xiaobo.csv',
      'wechat-coronavirus.csv',
    ] as const;
    const texts: string[] = [];
    for (const f of lists)
      texts.push(...loadCitizenLab(f).termSets.map((s) => [...s.terms, ...Object.values(s.meta)].join(' ')));
    for (const t of TEMPLATES) texts.push(t.pattern, ...t.padding);
    texts.push(...controlVocabulary());
    // Chat that looks like ids: phone, order and card numbers, hashes, UUIDs, short links.
    texts.push(
      'call me at +86 138 0013 8000 or 010-6552-9988 tomorrow',
      'order 2024-0611-8873-2210 shipped, tracking 1Z999AA10123456784',
      'card 4111-1111-1111-1111 exp 12/28, iban DE89370400440532013000',
      'commit 3f9a0c21d7e84b65c0de1f2a3b4c5d6e7f809112 fixed it; short 3f9a0c2',
      'uuid 5d3f8f0e-3c1a-4b7e-9a51-2f6a1c0d9e11 and https://youtu.be/dQw4w9WgXcQ',
      'https://t.co/AbC123xYz9 https://bit.ly/3xYzAbC btc 1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2',
      '微信号 wxid_ab12cd34ef56gh78 群号 12345678901 验证码 482913',
      'passwords like Tr0ub4dor&3 or CorrectHorseBattery9 are not nonces',
    );
    const found = texts.flatMap((t) => findNonces(t).map((f) => ({ t, ...f })));
    expect(found).toEqual([]);
    expect(texts.length).toBeGreaterThan(1500);
  });
});
