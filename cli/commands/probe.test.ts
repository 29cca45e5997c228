import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../probe/config.ts';
import { createProgram } from '../command-list.ts';
import { register } from './probe.ts';

const root = new URL('../../', import.meta.url).pathname;

describe('silentdrop probe', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sd-probe-cli-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('does not register a new probe until its operator accepted the risks', () => {
    const file = join(dir, 'probe.yaml');
    writeFileSync(
      file,
      [
        // nothing listens here: the probe must refuse before it tries
        'collector_url: http://127.0.0.1:9',
        'enrollment_token: abcdefghijklmnopqrstuvwxyz',
        'data_dir: ./data',
        'country: US',
        'asn: 64500',
        'accounts: []',
        '',
      ].join('\n'),
    );
    const r = spawnSync(process.execPath, [join(root, 'bin/silentdrop.js'), 'probe', '--config', file], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('SD_ERR_PROBE_CONSENT');
    expect(r.stderr).toContain('docs/operators.md');
    expect(r.stderr).toContain('risks_accepted: true');
    expect(existsSync(join(dir, 'data', 'identity.json'))).toBe(false);
  });
});

describe('silentdrop probe init, service install, status', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sd-probe-init-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  async function run(args: string[]): Promise<string> {
    const program = createProgram();
    register(program);
    let out = '';
    const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      out += String(chunk);
      return true;
    });
    const log = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => {
      out += `${a.join(' ')}\n`;
    });
    try {
      await program.parseAsync(['node', 'silentdrop', 'probe', ...args]);
    } finally {
      write.mockRestore();
      log.mockRestore();
    }
    return out;
  }

  const initArgs = (file: string, data: string) => [
    'init',
    '--yes',
    '--config',
    file,
    '--collector-url',
    'https://collector.example.org',
    '--collector-url',
    'http://127.0.0.1:8080',
    '--enrollment-token',
    'abcdefghijklmnopqrstuvwxyz',
    '--data-dir',
    data,
    '--country',
    'cn',
    '--asn',
    '4134',
    '--account',
    'example/alice/CN',
  ];

  it('init --yes refuses without --accept-risks and writes nothing', async () => {
    const file = join(dir, 'refused.yaml');
    await expect(run(initArgs(file, join(dir, 'refused-data')))).rejects.toMatchObject({
      code: 'SD_ERR_PROBE_CONSENT',
    });
    expect(existsSync(file)).toBe(false);
    expect(existsSync(join(dir, 'refused-data'))).toBe(false);
  });

  it('init --yes --accept-risks writes a 0600 config that loads, and the key', () => {
    const file = join(dir, 'probe.yaml');
    const data = join(dir, 'data');
    const r = spawnSync(
      process.execPath,
      [join(root, 'bin/silentdrop.js'), 'probe', ...initArgs(file, data), '--accept-risks'],
      { encoding: 'utf8', timeout: 60_000 },
    );
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(data, 'identity.json')).mode & 0o777).toBe(0o600);
    expect(r.stdout).toContain('public key');
  });

  it('the written config loads; service install writes a unit for it; status reads its data folder', async () => {
    const file = join(dir, 'probe.yaml');
    const data = join(dir, 'data');
    const c = await loadConfig(file);
    expect(c).toMatchObject({ risksAccepted: true, country: 'CN', asn: 4134, dataDir: data });
    expect(c.collectorUrls).toEqual(['https://collector.example.org', 'http://127.0.0.1:8080']);

    const unitFile = join(dir, 'silentdrop-probe.service');
    await run(['service', 'install', '--config', file, '--output', unitFile]);
    const unit = readFileSync(unitFile, 'utf8');
    expect(unit).toContain(`probe --config ${file}`);
    expect(unit).toContain(`ReadWritePaths=${data}`);

    const out = await run(['status', '--config', file]);
    expect(out).toContain('identity:         not registered yet');
    expect(out).toContain('outbox backlog:   0 event(s)');
  });
});
