import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

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
