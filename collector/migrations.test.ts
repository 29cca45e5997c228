import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { MIGRATIONS_FOLDER } from './db/open.ts';
import { describeEachDb } from './test-support/db.ts';

const run = promisify(execFile);
const root = resolve(MIGRATIONS_FOLDER, '..');

describe('migrations', () => {
  it('match the drizzle schema (drizzle-kit generate writes nothing new)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sd-migrations-'));
    try {
      const out = join(dir, 'migrations');
      cpSync(MIGRATIONS_FOLDER, out, { recursive: true });
      const config = join(dir, 'drizzle.config.ts');
      writeFileSync(
        config,
        // drizzle-kit wants paths relative to its working directory (it prefixes "./").
        `export default ${JSON.stringify({
          dialect: 'postgresql',
          schema: './collector/db/schema.ts',
          out: relative(root, out),
        })};\n`,
      );
      const before = readdirSync(out).sort();
      const { stdout, stderr } = await run(
        join(root, 'node_modules/.bin/drizzle-kit'),
        ['generate', '--config', config],
        { cwd: root },
      );
      const after = readdirSync(out).sort();
      expect(after, `schema and migrations disagree; run npx drizzle-kit generate\n${stdout}`).toEqual(
        before,
      );
      // drizzle-kit exits 0 even when it fails to read the folder: insist on its all-clear.
      expect(`${stdout}${stderr}`).toMatch(/No schema changes/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describeEachDb('migrate', (getDb) => {
  it('applies again without error or change', async () => {
    await getDb().migrate();
    await getDb().migrate();
  });
});
