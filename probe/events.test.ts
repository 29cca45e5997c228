import fc from 'fast-check';
import { Compile } from 'typebox/compile';
import { describe, expect, it } from 'vitest';
import {
  GENERATED_NONCE_FORMS,
  LIMITS,
  makeNonce,
  ReceivedEvent,
  RejectedEvent,
  SentEvent,
} from '../protocol/index.ts';
import { type EventContext, receivedEvent, rejectedEvent, sentEvent } from './events.ts';
import { cutToCodePoints, representable } from './text.ts';

const ctx: EventContext = {
  platform: 'example',
  account: 'bob',
  adapter: { name: 'example', version: '1.0.0' },
  clockOffsetMs: 0,
};
const checkReceived = Compile(ReceivedEvent);
const checkSent = Compile(SentEvent);
const checkRejected = Compile(RejectedEvent);
const now = new Date();
const observed = (text: string, over: Record<string, unknown> = {}) => ({
  conversation: 'g1',
  from: 'alice',
  text,
  at: now,
  platformMessageId: 'm1',
  ...over,
});
const assignment = (text: string) => ({
  canary_id: '5d3f8f0e-3c1a-4b7e-9a51-2f6a1c0d9e11',
  campaign_id: '0b6f2a3e-8c4d-4f0a-b1e2-7d9c5a3f1e22',
  platform: 'example',
  sender: 'bob',
  conversation: 'g1',
  text,
  nonce: 'sdabcdef123456',
  send_at: now.toISOString(),
  deadline_at: now.toISOString(),
});
/** Every code unit well-formed: no lone surrogate anywhere. */
const wellFormed = (s: string) =>
  !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s);
const codePoints = (s: string) => [...s].length;

describe('hostile text in events', () => {
  it('replaces NUL in a received text with U+FFFD and says so, keeping the nonce', () => {
    const ev = receivedEvent(ctx, observed('hello sdabcdef123456 \u0000 world'), now)!;
    expect(ev.nonce).toBe('sdabcdef123456');
    expect(ev.text).toBe('hello sdabcdef123456 \uFFFD world');
    expect(ev.text_changes).toEqual(['nul_replaced']);
    expect(checkReceived.Check(ev)).toBe(true);
  });

  it('replaces lone surrogates and keeps well-formed pairs', () => {
    const ev = receivedEvent(ctx, observed('sdabcdef123456 a\uD83D b\uDE00 c 😀'), now)!;
    expect(ev.text).toBe('sdabcdef123456 a\uFFFD b\uFFFD c 😀');
    expect(ev.text_changes).toEqual(['lone_surrogate_replaced']);
  });

  it('finds a nonce of every form, and none in a message without one', () => {
    let seed = 1;
    const rand = (n: number) => {
      seed = (seed * 48271) % 2147483647;
      return seed % n;
    };
    for (const form of GENERATED_NONCE_FORMS) {
      const n = makeNonce(form, rand);
      const ev = receivedEvent(ctx, observed(`六四 (晚饭) ${n}`), now)!;
      expect(ev.nonce).toBe(n);
      expect(checkReceived.Check(ev)).toBe(true);
    }
    expect(
      receivedEvent(ctx, observed('order 12345-67890-12345-67890-12345 and 3f9a0c21d7e84b65c0de'), now),
    ).toBeUndefined();
  });

  it('leaves an ordinary text as seen, without text_changes', () => {
    const ev = receivedEvent(ctx, observed('sdabcdef123456 天气 😀 ok'), now)!;
    expect(ev.text).toBe('sdabcdef123456 天气 😀 ok');
    expect(ev).not.toHaveProperty('text_changes');
  });

  it('cuts a long text on a character boundary, never leaving half a surrogate pair', () => {
    // 8,191 ASCII then emoji: the cut falls inside the pair in UTF-16 units.
    const text = `sdabcdef123456 ${'x'.repeat(LIMITS.textChars - 16)}${'😀'.repeat(10)}`;
    const ev = receivedEvent(ctx, observed(text), now)!;
    expect(wellFormed(ev.text)).toBe(true);
    expect(codePoints(ev.text)).toBeLessThanOrEqual(LIMITS.textChars);
    expect(ev.text.endsWith('😀')).toBe(true);
    expect(ev.text_changes).toEqual(['truncated']);
    expect(checkReceived.Check(ev)).toBe(true);
  });

  it('does not split an emoji sequence at the cut when a boundary is near', () => {
    const family = '👨‍👩‍👧‍👦'; // 7 code points, one grapheme
    const s = `${'a'.repeat(10)}${family}`;
    expect(cutToCodePoints(s, 13)).toBe('a'.repeat(10));
    expect(cutToCodePoints(s, 17)).toBe(s);
    // One cluster longer than the bound: cut between code points rather than drop it all.
    const zalgo = `z${'\u0301'.repeat(50)}`;
    expect(codePoints(cutToCodePoints(zalgo, 20))).toBe(20);
  });

  it('handles a megabyte of hostile text quickly', () => {
    const huge = `sdabcdef123456 ${'\u0000\uD800😀'.repeat(300_000)}`;
    const t0 = performance.now();
    const ev = receivedEvent(ctx, observed(huge), now)!;
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(ev.text_changes).toEqual(['nul_replaced', 'lone_surrogate_replaced', 'truncated']);
    expect(checkReceived.Check(ev)).toBe(true);
  });

  it('makes sender, ids, notices and sent texts representable too', () => {
    const ev = receivedEvent(
      ctx,
      observed('sdabcdef123456', {
        from: `al\u0000ice${'\uD800'}`,
        platformMessageId: `${'😀'.repeat(300)}`,
      }),
      now,
    )!;
    expect(ev.from).toBe('al\uFFFDice\uFFFD');
    expect(codePoints(ev.platform_message_id!)).toBe(256);
    expect(wellFormed(ev.platform_message_id!)).toBe(true);
    expect(checkReceived.Check(ev)).toBe(true);
    const rej = rejectedEvent(ctx, assignment('sdabcdef123456 x'), now, 'notice_shown', 'blocked\u0000');
    expect(rej.notice).toBe('blocked\uFFFD');
    expect(rej.notice_changes).toEqual(['nul_replaced']);
    expect(checkRejected.Check(rej)).toBe(true);
    const sent = sentEvent(ctx, assignment('sdabcdef123456 x'), now, 'id\uDC00');
    expect(sent.platform_message_id).toBe('id\uFFFD');
    expect(sent).not.toHaveProperty('text_changes');
    expect(checkSent.Check(sent)).toBe(true);
  });

  it('always yields a schema-valid received event for any text around a nonce', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 200 }), fc.string({ unit: 'binary' }), (a, b) => {
        const ev = receivedEvent(ctx, observed(`${a} sdabcdef123456 ${b}`), now);
        if (!ev) return; // a nonce-like run around it can change the match; not this test's concern
        expect(checkReceived.Check(ev)).toBe(true);
        expect(wellFormed(ev.text)).toBe(true);
        expect(ev.text.includes('\u0000')).toBe(false);
      }),
    );
  });

  it('representable text is idempotent and bounded', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary', maxLength: 400 }),
        fc.integer({ min: 1, max: 300 }),
        (s, max) => {
          const r = representable(s, max);
          expect(codePoints(r.text)).toBeLessThanOrEqual(max);
          expect(wellFormed(r.text)).toBe(true);
          expect(representable(r.text, max)).toEqual({ text: r.text, changes: [] });
        },
      ),
    );
  });
});

describe('receipt time', () => {
  it("reads the platform's delivery time on the collector's clock, whichever way the probe's clock is off", () => {
    const delivered = new Date(Date.parse('2026-03-01T12:00:00.000Z'));
    for (const offset of [0, 420_000, -420_000]) {
      // The probe's clock is `offset` behind the collector's (offset = collector − probe).
      const probeNow = new Date(delivered.getTime() + 300 - offset);
      const ev = receivedEvent(
        { ...ctx, clockOffsetMs: offset },
        observed('hello sdabcdef123456', { at: delivered }),
        probeNow,
      )!;
      expect(Date.parse(ev.at) + ev.clock_offset_ms, `offset ${offset}`).toBe(delivered.getTime());
    }
  });

  it('takes now for a delivery time that is not plausible on the collector clock', () => {
    const probeNow = new Date();
    const ev = receivedEvent(
      { ...ctx, clockOffsetMs: 0 },
      observed('hello sdabcdef123456', { at: new Date(probeNow.getTime() + 3_600_000) }),
      probeNow,
    )!;
    expect(ev.at).toBe(probeNow.toISOString());
  });
});
