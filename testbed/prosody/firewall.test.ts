import { describe, expect, it } from 'vitest';
import { policyFromObject } from '../policy.ts';
import { FirewallPolicyError, generateFirewallScript, mucRealSender } from './firewall.ts';

const OPTS = { mucDomain: 'conference.localhost', senderListPath: (r: string) => `/tmp/fw/sender-${r}.list` };
const gen = (rules: unknown[], extra: Record<string, unknown> = {}) =>
  generateFirewallScript(policyFromObject({ regions: ['CN', 'US', 'TW'], rules, ...extra }), OPTS);

/** The rules of a script as blocks of non-comment lines, per chain. */
function blocks(script: string): { chain: string; lines: string[] }[] {
  const out: { chain: string; lines: string[] }[] = [];
  let chain = 'deliver';
  let cur: string[] = [];
  for (const line of script.split('\n')) {
    if (line.startsWith('::')) chain = line.slice(2);
    else if (line === '') {
      if (cur.length) out.push({ chain, lines: cur });
      cur = [];
    } else if (!line.startsWith('#') && !line.startsWith('%')) cur.push(line);
  }
  if (cur.length) out.push({ chain, lines: cur });
  return out;
}

describe('firewall script generator', () => {
  it('turns a drop rule into DROP on ::deliver per recipient region', () => {
    const s = gen([
      { id: 'd', match: { any: ['foo'] }, action: 'drop', scope: { recipient_region: ['CN'] } },
    ]);
    expect(blocks(s)).toEqual([
      {
        chain: 'deliver',
        lines: [
          'KIND: message',
          'TYPE: chat,normal,groupchat',
          'INSPECT: body#/=foo',
          'TO GROUP: CN',
          expect.stringMatching(/^LOG=\[info\] silentdrop firewall: rule d dropped/),
          'DROP.',
        ],
      },
    ]);
  });

  it('turns a combination into several INSPECT lines of one rule, and any-terms into one rule each', () => {
    const all = blocks(gen([{ id: 'c', match: { all: ['709', '律师'] }, action: 'drop' }]));
    expect(all).toHaveLength(1);
    expect(all[0]?.lines.filter((l) => l.startsWith('INSPECT'))).toEqual([
      'INSPECT: body#/=709',
      'INSPECT: body#/=律师',
    ]);
    const any = blocks(gen([{ id: 'a', match: { any: ['x1', 'x2', 'x3'] }, action: 'drop' }]));
    expect(any.map((b) => b.lines.filter((l) => l.startsWith('INSPECT')))).toEqual([
      ['INSPECT: body#/=x1'],
      ['INSPECT: body#/=x2'],
      ['INSPECT: body#/=x3'],
    ]);
  });

  it('turns a notice into BOUNCE with the text on ::preroute', () => {
    const s = gen([
      { id: 'n', match: { any: ['法轮功'] }, action: 'notice', notice: 'Not allowed (policy)' },
    ]);
    const [b] = blocks(s);
    expect(b?.chain).toBe('preroute');
    expect(b?.lines.at(-1)).toBe('BOUNCE=policy-violation (Not allowed (policy))');
    expect(s.indexOf('::preroute')).toBeLessThan(s.indexOf('BOUNCE'));
  });

  it('maps conversation scope to message types', () => {
    const types = (conversation: string) =>
      blocks(gen([{ id: 'k', match: { any: ['t'] }, action: 'drop', scope: { conversation } }])).map((b) =>
        b.lines.find((l) => l.startsWith('TYPE')),
      );
    expect(types('direct')).toEqual(['TYPE: chat,normal']);
    expect(types('group')).toEqual(['TYPE: groupchat']);
    expect(types('any')).toEqual(['TYPE: chat,normal,groupchat']);
  });

  it('checks the sender with FROM GROUP in direct chats and with the room occupant lookup in groups', () => {
    const s = gen([
      {
        id: 's',
        match: { any: ['t'] },
        action: 'drop',
        scope: { sender_region: ['US'], recipient_region: ['CN', 'TW'] },
      },
    ]);
    const bs = blocks(s);
    expect(bs).toHaveLength(4); // {direct, group} × {CN, TW}
    const direct = bs.filter((b) => b.lines.includes('TYPE: chat,normal'));
    const group = bs.filter((b) => b.lines.includes('TYPE: groupchat'));
    expect(direct.map((b) => b.lines.filter((l) => /GROUP/.test(l)))).toEqual([
      ['TO GROUP: CN', 'FROM GROUP: US'],
      ['TO GROUP: TW', 'FROM GROUP: US'],
    ]);
    for (const b of group) {
      expect(b.lines).toContain(
        `CHECK LIST: sd_sender_US contains $(${mucRealSender('conference.localhost')})`,
      );
      expect(b.lines.some((l) => l.startsWith('FROM GROUP'))).toBe(false);
    }
    expect(s).toContain('%LIST sd_sender_US: file:/tmp/fw/sender-US.list');
  });

  it('keeps the lookup expression one line with balanced parentheses (mod_firewall reads $(…) by %b())', () => {
    const e = mucRealSender('conference.localhost');
    expect(e).not.toMatch(/\n/);
    let depth = 0;
    for (const ch of e) {
      depth += ch === '(' ? 1 : ch === ')' ? -1 : 0;
      expect(depth).toBeGreaterThanOrEqual(0);
    }
    expect(depth).toBe(0);
  });

  it('follows every rule with a blank line', () => {
    const s = gen([
      { id: 'a', match: { all: ['x', 'y'] }, action: 'drop', scope: { sender_region: ['US'] } },
      { id: 'b', match: { any: ['z'] }, action: 'notice', notice: 'no' },
    ]);
    const lines = s.split('\n');
    lines.forEach((line, i) => {
      if (line === 'DROP.' || line.startsWith('BOUNCE=')) expect(lines[i + 1]).toBe('');
    });
    expect(lines.filter((l) => l === 'DROP.' || l.startsWith('BOUNCE='))).toHaveLength(3);
  });

  it('refuses actions and fields with no XMPP equivalent, naming each rule', () => {
    let err: unknown;
    try {
      gen(
        [
          { id: 'slow', match: { any: ['a'] }, action: 'delay', delay_ms: 1000 },
          { id: 'mask', match: { any: ['b'] }, action: 'replace', replace_with: '*' },
          { id: 'coin', match: { any: ['c'] }, action: 'drop', probability: 0.5 },
          { id: 'window', match: { any: ['d'] }, action: 'drop', active: { from: '2026-01-01T00:00:00Z' } },
          {
            id: 'n-group',
            match: { any: ['e'] },
            action: 'notice',
            notice: 'x',
            scope: { recipient_region: ['CN'] },
          },
          { id: 'multi', match: { any: ['bad\nterm'] }, action: 'drop' },
        ],
        { background: { loss: 0.1, latency_ms: { median: 10, p95: 20 } } },
      );
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FirewallPolicyError);
    const problems = (err as FirewallPolicyError).problems.map((p) => `${p.ruleId ?? '-'} ${p.field}`);
    expect(problems).toEqual([
      '- background.loss',
      '- background.latency_ms',
      'slow action',
      'mask action',
      'coin probability',
      'window active',
      'n-group scope.recipient_region',
      'multi match.any[0]',
    ]);
    expect((err as Error).message).toMatch(/rule "slow" action: delay has no mod_firewall equivalent/);
  });

  it('accepts a notice with recipient_region in direct chats (TO GROUP before routing)', () => {
    const s = gen([
      {
        id: 'n',
        match: { any: ['e'] },
        action: 'notice',
        notice: 'x',
        scope: { conversation: 'direct', recipient_region: ['CN'] },
      },
    ]);
    expect(blocks(s)[0]?.lines).toEqual(expect.arrayContaining(['TYPE: chat,normal', 'TO GROUP: CN']));
  });

  it('writes nothing but the header for a policy without rules', () => {
    expect(blocks(gen([]))).toEqual([]);
  });
});
