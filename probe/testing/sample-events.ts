/** Valid probe events for tests. */
import { randomUUID } from 'node:crypto';
import type { ReceivedEvent } from '../../protocol/index.ts';

export function sampleReceived(i: number, over: Partial<ReceivedEvent> = {}): ReceivedEvent {
  const nonce = `sd${i.toString(36).padStart(12, '0')}`;
  return {
    type: 'received',
    event_id: randomUUID(),
    platform: 'example',
    account: 'bob',
    conversation: 'g1',
    at: new Date().toISOString(),
    clock_offset_ms: 0,
    adapter: { name: 'example', version: '1.0.0' },
    nonce,
    text: `hello ${nonce}`,
    from: 'alice',
    ...over,
  };
}
