import { describe, expect, it } from 'vitest';
import { readSse, SseParser } from './sse.ts';

describe('SSE parser', () => {
  const stream =
    'id: 1\nevent: message\ndata: {"a":1}\n\n: ping\n\nid: 2\ndata: line1\ndata: line2\n\nid: 3\r\ndata: crlf\r\n\r\n';

  it('parses events, ids, comments and multi-line data', () => {
    const p = new SseParser();
    const evs = p.push(stream);
    expect(evs).toEqual([
      { event: 'message', data: '{"a":1}', lastEventId: '1' },
      { event: 'message', data: 'line1\nline2', lastEventId: '2' },
      { event: 'message', data: 'crlf', lastEventId: '3' },
    ]);
  });

  it('gives the same events however the bytes are split', () => {
    const whole = new SseParser().push(stream);
    for (let size = 1; size <= 7; size++) {
      const p = new SseParser();
      const out = [];
      for (let i = 0; i < stream.length; i += size) out.push(...p.push(stream.slice(i, i + size)));
      expect(out).toEqual(whole);
    }
  });

  it('reads a byte stream with multi-byte characters split across chunks', async () => {
    const bytes = new TextEncoder().encode('id: 9\ndata: 六四 天安门\n\n');
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < bytes.length; i += 2) c.enqueue(bytes.slice(i, i + 2));
        c.close();
      },
    });
    const got: string[] = [];
    const parser = new SseParser('5');
    await readSse(body, parser, { onEvent: (e) => void got.push(`${e.lastEventId}:${e.data}`) });
    expect(got).toEqual(['9:六四 天安门']);
    expect(parser.lastEventId).toBe('9');
  });
});
