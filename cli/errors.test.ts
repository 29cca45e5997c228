import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CliError, reportCliError } from './errors.ts';

const root = new URL('../', import.meta.url).pathname;

/** Every SD_ERR_* code the shipped code can raise (tests and test doubles left out). */
function codesInCode(): Set<string> {
  const codes = new Set<string>();
  for (const dir of ['cli', 'collector', 'probe', 'protocol', 'testbed']) {
    for (const f of readdirSync(join(root, dir), { recursive: true, encoding: 'utf8' })) {
      if (!f.endsWith('.ts') || f.endsWith('.test.ts') || /(^|\/)(testing|test-support)\//.test(f)) continue;
      for (const m of readFileSync(join(root, dir, f), 'utf8').matchAll(/SD_ERR_[A-Z0-9_]+/g))
        codes.add(m[0]);
    }
  }
  return codes;
}

describe('error codes', () => {
  it('docs/errors.md lists every code the code can print', () => {
    const doc = readFileSync(join(root, 'docs/errors.md'), 'utf8');
    const codes = codesInCode();
    expect(codes.size).toBeGreaterThan(20);
    const missing = [...codes].filter((c) => !doc.includes(`\`${c}`));
    expect(missing).toEqual([]);
  });

  it('the CLI prints one line with the code', () => {
    const lines: string[] = [];
    const original = console.error;
    console.error = (line: string) => lines.push(line);
    try {
      reportCliError(new CliError('port 8080 is taken', 'SD_ERR_PORT_IN_USE'));
    } finally {
      console.error = original;
    }
    expect(lines).toEqual(['silentdrop: SD_ERR_PORT_IN_USE: port 8080 is taken']);
  });
});
