import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveChromium } from './executable.ts';

describe('finding Chromium', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sd-chromium-'));
  const fake = join(dir, 'chrome');
  writeFileSync(fake, '#!/bin/sh\n');
  chmodSync(fake, 0o755);

  it('prefers the configured path, then SILENTDROP_CHROMIUM', async () => {
    expect(await resolveChromium({ configured: fake, env: {} })).toBe(fake);
    expect(await resolveChromium({ env: { SILENTDROP_CHROMIUM: fake } })).toBe(fake);
  });

  it('fails with a clear adapter_error when nothing is found', async () => {
    await expect(
      resolveChromium({ env: { PATH: dir.replace('sd-', 'none-') }, systemPaths: [], usePuppeteer: false }),
    ).rejects.toMatchObject({
      code: 'adapter_error',
      message: expect.stringMatching(/^no Chromium found: set executablePath/),
    });
    await expect(resolveChromium({ configured: join(dir, 'missing'), env: {} })).rejects.toMatchObject({
      code: 'adapter_error',
    });
  });
});
