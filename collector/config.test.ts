import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig, withEnvFile } from './config.ts';

describe('loadConfig', () => {
  const dirs: string[] = [];
  const tmp = () => {
    const d = mkdtempSync(join(tmpdir(), 'sd-config-'));
    dirs.push(d);
    return d;
  };
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('defaults to embedded Postgres on 127.0.0.1:8080 and keeps generated secrets 0600', () => {
    const data = tmp();
    const a = loadConfig({}, { SILENTDROP_DATA: data });
    expect(a).toMatchObject({ databaseUrl: undefined, dataDir: data, host: '127.0.0.1', port: 8080 });
    expect(statSync(join(data, 'admin-token')).mode & 0o777).toBe(0o600);
    expect(statSync(join(data, 'hash-key')).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(data, 'admin-token'), 'utf8').trim()).toBe(a.adminToken);
    const b = loadConfig({}, { SILENTDROP_DATA: data });
    expect(b.adminToken).toBe(a.adminToken);
    expect(b.hashKey.equals(a.hashKey)).toBe(true);
  });

  it('lets flags win over the environment', () => {
    const data = tmp();
    const c = loadConfig(
      { port: '0', host: '0.0.0.0', data },
      { PORT: '9999', HOST: 'x', SILENTDROP_DATA: '/nonexistent' },
    );
    expect(c).toMatchObject({ port: 0, host: '0.0.0.0', dataDir: data });
  });

  it('fails fast with a message naming the setting', () => {
    const data = tmp();
    expect(() => loadConfig({}, { SILENTDROP_DATA: data, PORT: 'http' })).toThrow(/PORT must be an integer/);
    expect(() => loadConfig({}, { SILENTDROP_DATA: data, DATABASE_URL: 'mysql://x' })).toThrow(
      /DATABASE_URL/,
    );
    expect(() => loadConfig({}, { SILENTDROP_DATA: data, SILENTDROP_ADMIN_TOKEN: 'short' })).toThrow(
      /SILENTDROP_ADMIN_TOKEN/,
    );
    try {
      loadConfig({}, { SILENTDROP_DATA: data, PORT: '70000' });
    } catch (err) {
      expect((err as { code: string }).code).toBe('SD_ERR_CONFIG');
    }
  });

  it('reports every wrong setting at once, one line each', () => {
    const data = tmp();
    let message = '';
    try {
      loadConfig(
        {},
        {
          SILENTDROP_DATA: data,
          PORT: 'http',
          LOG_LEVEL: 'loud',
          DATABASE_POOL_SIZE: '0',
          SILENTDROP_TRUST_PROXY: 'everyone',
          SILENTDROP_HASH_KEY: 'short',
        },
      );
    } catch (err) {
      message = (err as Error).message;
      expect((err as { code: string }).code).toBe('SD_ERR_CONFIG');
    }
    expect(message).toMatch(/^5 settings are wrong:/);
    for (const name of [
      'PORT',
      'LOG_LEVEL',
      'DATABASE_POOL_SIZE',
      'SILENTDROP_TRUST_PROXY',
      'SILENTDROP_HASH_KEY',
    ]) {
      expect(message).toContain(`\n- ${name}`);
    }
  });

  it('reads pool size and trusted proxies', () => {
    const data = tmp();
    const c = loadConfig(
      {},
      { SILENTDROP_DATA: data, DATABASE_POOL_SIZE: '25', SILENTDROP_TRUST_PROXY: '127.0.0.1, 10.0.0.0/8' },
    );
    expect(c.databasePoolSize).toBe(25);
    expect(c.trustProxy).toEqual(['127.0.0.1', '10.0.0.0/8']);
    expect(loadConfig({}, { SILENTDROP_DATA: data, SILENTDROP_TRUST_PROXY: '1' }).trustProxy).toBe(1);
    expect(loadConfig({}, { SILENTDROP_DATA: data }).trustProxy).toBe(false);
  });

  it('keeps canary events 365 days and look-alike receipts 30 by default; 0 keeps them forever', () => {
    const data = tmp();
    expect(loadConfig({}, { SILENTDROP_DATA: data })).toMatchObject({
      eventRetentionDays: 365,
      lookAlikeRetentionDays: 30,
    });
    expect(
      loadConfig(
        {},
        {
          SILENTDROP_DATA: data,
          SILENTDROP_EVENT_RETENTION_DAYS: '0',
          SILENTDROP_LOOKALIKE_RETENTION_DAYS: '7',
        },
      ),
    ).toMatchObject({ eventRetentionDays: 0, lookAlikeRetentionDays: 7 });
  });

  it('reads whether screens clear with the clearance rule (default true, decision 038)', () => {
    const data = tmp();
    const clearance = (v?: string) =>
      loadConfig(
        {},
        { SILENTDROP_DATA: data, ...(v === undefined ? {} : { SILENTDROP_SCREEN_CLEARANCE: v }) },
      ).screenClearance;
    expect(clearance()).toBe(true);
    expect(clearance('')).toBe(true);
    expect([clearance('true'), clearance('1'), clearance(' TRUE ')]).toEqual([true, true, true]);
    expect([clearance('false'), clearance('0')]).toEqual([false, false]);
    expect(() => clearance('yes please')).toThrow(
      'SILENTDROP_SCREEN_CLEARANCE must be true or false, got "yes please"',
    );
  });

  it('reads the research query and export limits, with their defaults and bounds', () => {
    const data = tmp();
    expect(loadConfig({}, { SILENTDROP_DATA: data })).toMatchObject({
      researchStatementTimeoutMs: 30_000,
      exportMaxConcurrent: 4,
      exportTimeoutMs: 3_600_000,
      exportStallMs: 60_000,
    });
    expect(
      loadConfig(
        {},
        {
          SILENTDROP_DATA: data,
          SILENTDROP_RESEARCH_STATEMENT_TIMEOUT_MS: '5000',
          SILENTDROP_EXPORT_MAX_CONCURRENT: '2',
          SILENTDROP_EXPORT_TIMEOUT_MS: '7200000',
          SILENTDROP_EXPORT_STALL_MS: '15000',
        },
      ),
    ).toMatchObject({
      researchStatementTimeoutMs: 5000,
      exportMaxConcurrent: 2,
      exportTimeoutMs: 7_200_000,
      exportStallMs: 15_000,
    });
    expect(() =>
      loadConfig(
        {},
        {
          SILENTDROP_DATA: data,
          SILENTDROP_RESEARCH_STATEMENT_TIMEOUT_MS: '0',
          SILENTDROP_EXPORT_MAX_CONCURRENT: '1000',
          SILENTDROP_EXPORT_TIMEOUT_MS: '1h',
          SILENTDROP_EXPORT_STALL_MS: '-5',
        },
      ),
    ).toThrow(
      [
        'SILENTDROP_RESEARCH_STATEMENT_TIMEOUT_MS must be an integer from 1000 to 600000, got "0"',
        'SILENTDROP_EXPORT_MAX_CONCURRENT must be an integer from 1 to 64, got "1000"',
        'SILENTDROP_EXPORT_TIMEOUT_MS must be an integer from 60000 to 86400000, got "1h"',
        'SILENTDROP_EXPORT_STALL_MS must be an integer from 1000 to 3600000, got "-5"',
      ].join('\n- '),
    );
  });

  it('reports wrong retention settings together with the others', () => {
    const data = tmp();
    for (const [events, lookAlikes] of [
      ['-1', '1.5'],
      ['forever', '36501'],
      ['1e3', ' '],
    ] as const) {
      let message = '';
      try {
        loadConfig(
          {},
          {
            SILENTDROP_DATA: data,
            PORT: 'http',
            SILENTDROP_EVENT_RETENTION_DAYS: events,
            SILENTDROP_LOOKALIKE_RETENTION_DAYS: lookAlikes,
          },
        );
      } catch (err) {
        message = (err as Error).message;
        expect((err as { code: string }).code).toBe('SD_ERR_CONFIG');
      }
      expect(message).toMatch(/^3 settings are wrong:/);
      expect(message).toContain(
        `\n- SILENTDROP_EVENT_RETENTION_DAYS must be an integer from 0 to 36500, got "${events}"`,
      );
      expect(message).toContain(
        `\n- SILENTDROP_LOOKALIKE_RETENTION_DAYS must be an integer from 0 to 36500, got "${lookAlikes}"`,
      );
    }
  });

  it('reads an env file; the environment wins over it', () => {
    const data = tmp();
    const file = join(data, 'collector.env');
    writeFileSync(file, '# comment\nPORT=9090\nHOST=127.0.0.2\nLOG_LEVEL="warn"\n');
    const env = withEnvFile({ SILENTDROP_DATA: data, HOST: '127.0.0.3' }, file);
    expect(loadConfig({}, env)).toMatchObject({ port: 9090, host: '127.0.0.3', logLevel: 'warn' });
    expect(() => withEnvFile({}, join(data, 'missing.env'))).toThrow(/cannot read the env file/);
  });
});
