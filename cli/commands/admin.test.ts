import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../collector/app.ts';
import { openTestDatabase } from '../../collector/test-support/db.ts';
import { enrollProbe, TEST_ADMIN_TOKEN, TEST_HASH_KEY } from '../../collector/test-support/probe.ts';

const root = new URL('../../', import.meta.url).pathname;

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(root, 'bin/silentdrop.js'), ...args], {
      env: { ...process.env, SILENTDROP_ADMIN_TOKEN: '', SILENTDROP_URL: '' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('silentdrop admin (fleet verbs, options after the verb)', () => {
  let database: Awaited<ReturnType<typeof openTestDatabase>>;
  let app: FastifyInstance;
  let url: string;
  beforeAll(async () => {
    database = await openTestDatabase({ name: 'pglite' });
    app = await buildApp({
      db: database.db,
      config: { adminToken: TEST_ADMIN_TOKEN, hashKey: TEST_HASH_KEY, checkinIntervalMs: 60_000 },
    });
    url = await app.listen({ host: '127.0.0.1', port: 0 });
  });
  afterAll(async () => {
    await app.close();
    await database.cleanup();
  });

  it('lists probes with health, revokes one, and adds a webhook, options given after the verb', async () => {
    const probe = await enrollProbe(app, { country: 'RU', asn: 8359 });
    const conn = ['--url', url, '--token', TEST_ADMIN_TOKEN];

    const listed = await cli(['admin', 'probes', ...conn]);
    expect(listed.stderr).toBe('');
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(new RegExp(`${probe.id}\\s+RU\\s+8359.*never_checked_in`));

    const revoked = await cli(['admin', 'probe', 'revoke', probe.id, '--replacement', ...conn]);
    expect(revoked.code).toBe(0);
    expect(revoked.stdout.trim()).toMatch(/^sdenroll_/);
    expect(revoked.stderr).toContain(`probe ${probe.id} revoked`);
    // Options before the verb work too.
    const after = JSON.parse((await cli(['admin', ...conn, 'probes', '--json'])).stdout);
    expect(after.probes[0].health).toBe('revoked');

    const hook = await cli([
      'admin',
      'webhook',
      'add',
      'http://127.0.0.1:9/hook',
      '--format',
      'slack',
      '--kind',
      'probe_silent',
      ...conn,
    ]);
    expect(hook.code).toBe(0);
    expect(hook.stdout.trim()).toMatch(/^sdhook_/);
    const bad = await cli(['admin', 'campaign', 'pause', '00000000-0000-4000-8000-000000000000', ...conn]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('SD_ERR_NOT_FOUND');

    const dry = await cli(['admin', 'prune', '--dry-run', ...conn]);
    expect(dry.stderr).toBe('');
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain('canary events (365 days after the deadline): would delete 0 of 0 canaries');
    expect(dry.stdout).toContain('look-alike receipts (30 days): would delete 0');
    const pruned = JSON.parse((await cli(['admin', 'prune', '--json', ...conn])).stdout);
    expect(pruned).toMatchObject({ dry_run: false, canaries: 0, canary_events: 0, lookalike_receipts: 0 });
  }, 180_000);
});
