import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadPolicyFile, PolicyError, parsePolicy, policyFromObject } from './policy.ts';

const here = new URL('.', import.meta.url).pathname;

function refused(text: string): PolicyError {
  try {
    parsePolicy(text, 'p.yaml');
  } catch (err) {
    if (err instanceof PolicyError) return err;
    throw err;
  }
  throw new Error('policy was accepted');
}

const DESIGN_EXAMPLE = `regions: [CN, US, AU, TW]
background:
  loss: 0.01
  latency_ms: { median: 300, p95: 1500 }
outages:
  - { from: "2026-06-04T00:00:00Z", to: "2026-06-04T00:30:00Z" }
rules:
  - id: combo-709
    match: { all: ["709", "律师"] }
    action: drop
    scope:
      conversation: group
      sender_region: [US]
      recipient_region: [CN]
    probability: 1.0
    active: { from: "2026-01-01T00:00:00Z", to: "2027-01-01T00:00:00Z" }
  - id: slow-review
    match: { any: ["维权"] }
    action: delay
    delay_ms: 20000
  - id: overt
    match: { any: ["法轮功"] }
    action: notice
    notice: "This message contains inappropriate content"
  - id: mask
    match: { any: ["习近平"] }
    action: replace
    replace_with: "***"
`;

describe('policy loading', () => {
  it('parses every rule kind of the design example', () => {
    const p = parsePolicy(DESIGN_EXAMPLE, 'design.yaml');
    expect(p.regions).toEqual(['CN', 'US', 'AU', 'TW']);
    expect(p.background).toEqual({ loss: 0.01, latencyMs: { median: 300, p95: 1500 } });
    expect(p.outages).toEqual([
      { from: Date.parse('2026-06-04T00:00:00Z'), to: Date.parse('2026-06-04T00:30:00Z') },
    ]);
    expect(p.rules.map((r) => r.action)).toEqual(['drop', 'delay', 'notice', 'replace']);
    const [combo, slow, overt, mask] = p.rules;
    expect(combo).toMatchObject({
      id: 'combo-709',
      match: { mode: 'all', terms: ['709', '律师'] },
      scope: { conversation: 'group', senderRegion: ['US'], recipientRegion: ['CN'] },
      probability: 1,
      active: { from: Date.parse('2026-01-01T00:00:00Z'), to: Date.parse('2027-01-01T00:00:00Z') },
    });
    expect(slow).toMatchObject({ action: 'delay', delayMs: 20000, match: { mode: 'any', terms: ['维权'] } });
    expect(overt).toMatchObject({ action: 'notice', notice: 'This message contains inappropriate content' });
    expect(mask).toMatchObject({ action: 'replace', replaceWith: '***' });
  });

  it('applies the defaults: scope any, probability 1, no window, no background, no outages', () => {
    const p = parsePolicy('regions: [CN]\nrules:\n  - { id: r, match: { any: [x] }, action: drop }\n');
    expect(p.rules[0]).toEqual({
      id: 'r',
      action: 'drop',
      match: { mode: 'any', terms: ['x'] },
      scope: { conversation: 'any', senderRegion: 'any', recipientRegion: 'any' },
      probability: 1,
    });
    expect(p.background).toEqual({ loss: 0, latencyMs: { median: 0, p95: 0 } });
    expect(p.outages).toEqual([]);
  });

  it('reads the same format from JSON, and from a file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'policy-'));
    const file = join(dir, 'p.json');
    writeFileSync(
      file,
      JSON.stringify({
        regions: ['CN', 'US'],
        rules: [{ id: 'n', match: { any: ['a'] }, action: 'notice', notice: 'no' }],
      }),
    );
    expect(loadPolicyFile(file).rules[0]).toMatchObject({ id: 'n', action: 'notice', notice: 'no' });
  });

  it('accepts the shipped demo policy', () => {
    const p = loadPolicyFile(join(here, 'policies/demo.yaml'));
    expect(p.rules.map((r) => r.action).sort()).toEqual(['delay', 'drop', 'drop', 'notice', 'replace']);
    expect(p.background.loss).toBeCloseTo(0.01);
  });

  it('validates a plain object the same way, naming the field', () => {
    expect(() =>
      policyFromObject({ regions: ['CN'], rules: [{ id: 'x', match: { any: ['a'] }, action: 'zap' }] }),
    ).toThrow(/rules\[0\]\.action: must be one of drop \| delay \| notice \| replace/);
  });
});

describe('malformed policies are refused with field and line', () => {
  it('refuses broken YAML with its line', () => {
    const err = refused('regions: [CN\nrules: []\n');
    expect(err.issues[0]?.line).toBeGreaterThan(0);
    expect(err.message).toMatch(/p\.yaml:\d+:\d+ \(syntax\)/);
  });

  it('refuses an unknown key with a did-you-mean hint', () => {
    const err = refused(
      'regions: [CN]\nrules:\n  - id: r\n    match: { any: [x] }\n    action: drop\n    probabilty: 0.5\n',
    );
    expect(err.message).toContain(
      'p.yaml:6:5 rules[0].probabilty: unknown key "probabilty" (did you mean "probability"?)',
    );
  });

  it('refuses a wrong type', () => {
    const err = refused('regions: [CN]\nbackground:\n  loss: lots\n');
    expect(err.message).toContain('p.yaml:3:9 background.loss: must be a number from 0 to 1, got "lots"');
  });

  it('refuses an unquoted number as a term (leading zeros would be lost)', () => {
    const err = refused('regions: [CN]\nrules:\n  - { id: r, match: { all: [0709, x] }, action: drop }\n');
    expect(err.message).toMatch(
      /p\.yaml:3:\d+ rules\[0\]\.match\.all\[0\]: must be a string, got number 709 \(quote it: "0709"\)/,
    );
  });

  it('refuses a region not in the policy and a malformed region code', () => {
    const err = refused(
      'regions: [CN, us]\nrules:\n  - id: r\n    match: { any: [x] }\n    action: drop\n    scope: { recipient_region: [RU] }\n',
    );
    expect(err.message).toContain(
      'p.yaml:1:15 regions[1]: must be an upper-case two-letter code like CN, got "us"',
    );
    expect(err.message).toContain('p.yaml:6:33 rules[0].scope.recipient_region[0]: unknown region "RU"');
  });

  it('refuses a bad date and a window that ends before it starts', () => {
    const err = refused(
      'regions: [CN]\noutages:\n  - { from: "2026-02-30T00:00:00Z", to: "2026-03-01T00:00:00Z" }\n  - { from: "2026-06-04T01:00:00Z", to: "2026-06-04T00:00:00Z" }\n',
    );
    expect(err.message).toMatch(/p\.yaml:3:\d+ outages\[0\]\.from: must be an ISO 8601 date-time/);
    expect(err.message).toMatch(/p\.yaml:4:\d+ outages\[1\]\.to: must be later than "from"/);
  });

  it('refuses a date without a time zone', () => {
    const err = refused(
      'regions: [CN]\noutages:\n  - { from: "2026-06-04 00:00", to: "2026-06-04T01:00:00Z" }\n',
    );
    expect(err.message).toContain('outages[0].from: must be an ISO 8601 date-time with a time zone');
  });

  it('refuses a probability above 1', () => {
    const err = refused(
      'regions: [CN]\nrules:\n  - id: r\n    match: { any: [x] }\n    action: drop\n    probability: 1.5\n',
    );
    expect(err.message).toContain('p.yaml:6:18 rules[0].probability: must be a number from 0 to 1, got 1.5');
  });

  it('refuses an action without its field and a field of another action', () => {
    const err = refused(
      'regions: [CN]\nrules:\n  - { id: a, match: { any: [x] }, action: delay }\n  - { id: b, match: { any: [x] }, action: drop, notice: hi }\n',
    );
    expect(err.message).toContain('p.yaml:3:5 rules[0]: action delay needs "delay_ms"');
    expect(err.message).toMatch(/p\.yaml:4:\d+ rules\[1\]\.notice: only allowed when action is notice/);
  });

  it('refuses duplicate rule ids, a match with both all and any, and an empty term list', () => {
    const err = refused(
      'regions: [CN]\nrules:\n  - { id: a, match: { any: [x], all: [y] }, action: drop }\n  - { id: b, match: { any: [] }, action: drop }\n  - { id: b, match: { any: [z] }, action: drop }\n',
    );
    expect(err.message).toContain('rules[0].match: needs exactly one of "all"');
    expect(err.message).toContain('rules[1].match.any: must list at least one term');
    expect(err.message).toContain('rules[2].id: duplicate rule id "b"');
  });

  it('refuses a missing regions list and p95 below the median', () => {
    const err = refused('background:\n  latency_ms: { median: 300, p95: 100 }\n');
    expect(err.message).toContain('(root): missing required key "regions"');
    expect(err.message).toMatch(/p\.yaml:2:\d+ background\.latency_ms\.p95: must be >= median \(300\)/);
  });

  it('refuses an unreadable file with a one-line reason', () => {
    expect(() => loadPolicyFile('/nonexistent/policy.yaml')).toThrow(
      /cannot read the policy file \(ENOENT\)/,
    );
  });
});
