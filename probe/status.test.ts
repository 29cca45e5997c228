import { describe, expect, it } from 'vitest';
import type { ProbeStatusFile } from './agent.ts';
import { formatLocalStatus, type LocalProbeStatus } from './status.ts';

const running: ProbeStatusFile = {
  version: 1,
  written_at: '2026-12-02T03:00:00.000Z',
  pid: 42,
  probe_id: '6f1c2b1e-1111-4222-8333-444455556666',
  collector_url: 'https://collector.example',
  collector_urls: ['https://collector.example'],
  last_checkin_at: '2026-12-02T03:00:00.000Z',
  last_checkin_error: null,
  clock: null,
  backlog: 0,
  dead_letters: 0,
  scheduled: 0,
  accounts: [],
};
const base: LocalProbeStatus = {
  dataDir: '/var/lib/silentdrop',
  backlog: 0,
  deadLetters: 0,
  unreadableRecords: 0,
};
const storageLine = (s: LocalProbeStatus) =>
  formatLocalStatus(s, Date.parse('2026-12-02T03:00:05Z'))
    .split('\n')
    .find((l) => l.startsWith('storage:'));

describe('probe status: storage', () => {
  it('says FULL with the time, the code and the canaries waiting, as the running probe wrote it', () => {
    const line = storageLine({
      ...base,
      freeBytes: 0,
      running: {
        ...running,
        storage: { state: 'full', since: '2026-12-02T02:59:00.000Z', code: 'ENOSPC' },
        deferred_canaries: 3,
      },
    });
    expect(line).toMatch(/^storage: +FULL since 2026-12-02T02:59:00.000Z \(ENOSPC, 0 KiB free\)/);
    expect(line).toContain('3 canary(ies) waiting');
  });

  it('says FULL from the free space alone when the probe could not rewrite its status file', () => {
    const line = storageLine({ ...base, freeBytes: 8192, running: { ...running, storage: { state: 'ok' } } });
    expect(line).toMatch(/^storage: +FULL \(8 KiB free, under 64 KiB\)/);
  });

  it('says ok with the free space, and ok for a status file from before the field existed', () => {
    expect(storageLine({ ...base, freeBytes: 10 * 1024 * 1024, running })).toBe(
      'storage:          ok, 10240 KiB free',
    );
    expect(storageLine(base)).toBe('storage:          ok');
  });
});
