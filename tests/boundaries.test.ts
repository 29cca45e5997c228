/**
 * The house rules as a test: the import graph of every non-test source file against the
 * rule table below; each crossing is reported as `file → import (rule)`.
 *
 *   probe ↔ collector never; testbed and protocol import nothing of the project; only the
 *   browser adapter imports puppeteer; only collector/db/ imports pg, PGlite and drizzle;
 *   no dev dependency at run time (in what `bin/silentdrop.js` loads).
 *
 * Imports are read with TypeScript's parser: static imports, `export … from`, `import()`
 * with a literal, `import('…').Type` and `new URL('./x.js', import.meta.url)` (a worker's
 * script); relative specifiers are resolved to repository paths.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, posix, relative, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..');
const SKIP_DIRS = new Set(['node_modules', '.git', 'dist', 'data', 'test-output', 'migrations']);
const SOURCE = /\.(ts|js|mjs)$/;

interface Import {
  specifier: string;
  /** Repository path of a relative import that resolves to a file. */
  file?: string | undefined;
  /** Erased at run time (`import type`, `import('…').T`, type-only specifiers). */
  typeOnly: boolean;
}
type Graph = Map<string, Import[]>;

/** Test code: test files, the test helpers' folders, the end-to-end and fault-suite harnesses. */
function isTestCode(file: string): boolean {
  return (
    /\.test\.ts$/.test(file) ||
    /(^|\/)(test-support|testing)\//.test(file) ||
    file.startsWith('e2e/') ||
    file.startsWith('faults/') ||
    file.startsWith('tests/')
  );
}

function sourceFiles(dir = ROOT, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    if (SKIP_DIRS.has(name) || name.startsWith('.')) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) sourceFiles(path, out);
    else if (SOURCE.test(name) && !name.endsWith('.d.ts'))
      out.push(relative(ROOT, path).split('\\').join('/'));
  }
  return out;
}

function resolveRelative(from: string, specifier: string): string | undefined {
  if (!specifier.startsWith('.')) return undefined;
  const base = posix.normalize(posix.join(posix.dirname(from), specifier));
  for (const candidate of [base, `${base}.ts`, `${base}/index.ts`, `${base}.js`]) {
    const abs = join(ROOT, candidate);
    if (existsSync(abs) && statSync(abs).isFile()) return candidate;
  }
  return base;
}

/** The imports of one file's source text. */
function importsOf(file: string, text: string): Import[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const found: Import[] = [];
  const add = (specifier: string, typeOnly: boolean) =>
    found.push({ specifier, file: resolveRelative(file, specifier), typeOnly });
  const visit = (node: ts.Node) => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const clause = node.importClause;
      const named = clause?.namedBindings;
      const typeOnly =
        !!clause &&
        (clause.isTypeOnly ||
          (!clause.name &&
            !!named &&
            ts.isNamedImports(named) &&
            named.elements.length > 0 &&
            named.elements.every((e) => e.isTypeOnly)));
      add(node.moduleSpecifier.text, typeOnly);
    } else if (
      ts.isExportDeclaration(node) &&
      node.moduleSpecifier &&
      ts.isStringLiteral(node.moduleSpecifier)
    ) {
      const clause = node.exportClause;
      const typeOnly =
        node.isTypeOnly ||
        (!!clause &&
          ts.isNamedExports(clause) &&
          clause.elements.length > 0 &&
          clause.elements.every((e) => e.isTypeOnly));
      add(node.moduleSpecifier.text, typeOnly);
    } else if (ts.isImportTypeNode(node)) {
      const arg = node.argument;
      if (ts.isLiteralTypeNode(arg) && ts.isStringLiteral(arg.literal)) add(arg.literal.text, true);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const [arg] = node.arguments;
      if (arg && ts.isStringLiteralLike(arg)) add(arg.text, false);
    } else if (
      ts.isNewExpression(node) &&
      ts.isIdentifier(node.expression) &&
      node.expression.text === 'URL' &&
      node.arguments?.length === 2
    ) {
      const [spec, base] = node.arguments;
      if (
        spec &&
        ts.isStringLiteralLike(spec) &&
        SOURCE.test(spec.text) &&
        base?.getText() === 'import.meta.url'
      ) {
        add(spec.text.startsWith('.') ? spec.text : `./${spec.text}`, false);
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

function readGraph(): Graph {
  const graph: Graph = new Map();
  for (const file of sourceFiles()) graph.set(file, importsOf(file, readFileSync(join(ROOT, file), 'utf8')));
  return graph;
}

/** `pg`, `@electric-sql/pglite` from `pg/lib/x`, `@electric-sql/pglite/worker`; undefined for files and builtins. */
function packageOf(specifier: string): string | undefined {
  if (specifier.startsWith('.') || specifier.startsWith('/') || specifier.startsWith('node:'))
    return undefined;
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

const under = (dir: string) => (file: string) => file.startsWith(`${dir}/`);

interface Rule {
  name: string;
  /** True when `file` importing `imp` crosses the rule. */
  crosses(file: string, imp: Import): boolean;
}

const DB_PACKAGES = new Set(['pg', '@electric-sql/pglite', 'drizzle-orm', 'drizzle-kit']);
const BROWSER_PACKAGES = new Set(['puppeteer', 'puppeteer-core']);

/** Applied to every non-test source file. */
const RULES: Rule[] = [
  {
    name: 'probe ↔ collector never',
    crosses: (file, imp) =>
      !!imp.file &&
      ((under('probe')(file) && under('collector')(imp.file)) ||
        (under('collector')(file) && under('probe')(imp.file))),
  },
  {
    name: 'testbed imports nothing of the project',
    crosses: (file, imp) => under('testbed')(file) && !!imp.file && !under('testbed')(imp.file),
  },
  {
    name: 'protocol imports nothing of the project',
    crosses: (file, imp) => under('protocol')(file) && !!imp.file && !under('protocol')(imp.file),
  },
  {
    name: 'only the browser adapter imports puppeteer',
    crosses: (file, imp) =>
      BROWSER_PACKAGES.has(packageOf(imp.specifier) ?? '') && !under('probe/adapters/browser')(file),
  },
  {
    name: 'only collector/db/ imports pg, PGlite and drizzle',
    crosses: (file, imp) =>
      DB_PACKAGES.has(packageOf(imp.specifier) ?? '') &&
      !under('collector/db')(file) &&
      // drizzle-kit's own configuration file (read by `npm run db:generate`, not code)
      file !== 'drizzle.config.ts',
  },
];

const DEV_RULE = 'no dev dependency at run time';
/** Files that may still load a dev dependency at run time, each with the reason. */
const DEV_ALLOWED = new Set<string>([
  // tsx only in a source checkout (the TypeScript beside it); the installed package runs dist/
  'bin/silentdrop.js',
  // builds the dashboard for `npm start` in a source checkout; the package ships it built
  // and leaves this file out (docs/decisions/015)
  'collector/http/dashboard-build.ts',
]);

/** Files `entries` load at run time (value imports, dynamic imports, worker scripts). */
function runtimeFiles(graph: Graph, entries: string[]): Set<string> {
  const seen = new Set<string>();
  const stack = [...entries];
  while (stack.length > 0) {
    const file = stack.pop() as string;
    if (seen.has(file) || !graph.has(file)) continue;
    seen.add(file);
    for (const imp of graph.get(file) ?? []) if (imp.file && !imp.typeOnly) stack.push(imp.file);
  }
  return seen;
}

interface PackageJson {
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  /** Optional peers (PGlite: a probe-only install does without it) are run-time dependencies too. */
  peerDependencies?: Record<string, string>;
}

/** Every crossing, as `file → import (rule)`. */
function crossings(graph: Graph, pkg: PackageJson, entries: string[]): string[] {
  const out: string[] = [];
  for (const [file, imports] of graph) {
    if (isTestCode(file)) continue;
    for (const imp of imports) {
      for (const rule of RULES)
        if (rule.crosses(file, imp)) out.push(`${file} → ${imp.specifier} (${rule.name})`);
    }
  }
  const runtimeDeps = new Set([
    ...Object.keys(pkg.dependencies ?? {}),
    ...Object.keys(pkg.optionalDependencies ?? {}),
    ...Object.keys(pkg.peerDependencies ?? {}),
  ]);
  const devOnly = new Set(Object.keys(pkg.devDependencies ?? {}).filter((d) => !runtimeDeps.has(d)));
  for (const file of runtimeFiles(graph, entries)) {
    if (isTestCode(file) || DEV_ALLOWED.has(file)) continue;
    for (const imp of graph.get(file) ?? []) {
      const name = packageOf(imp.specifier);
      // @types/x is the types of x; a type-only import is erased before the code runs
      if (name && !imp.typeOnly && devOnly.has(name)) out.push(`${file} → ${imp.specifier} (${DEV_RULE})`);
    }
  }
  return out.sort();
}

/**
 * What runs: the CLI's entry and every command (cli/main.ts imports ./commands/*.ts by
 * listing the folder), and through them the collector, the probe, the testbed and what
 * they start as worker threads.
 */
const ENTRIES = [
  'bin/silentdrop.js',
  ...readdirSync(join(ROOT, 'cli/commands'))
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))
    .map((f) => `cli/commands/${f}`),
];

describe('house rules (import boundaries)', () => {
  it('no source file crosses a boundary', () => {
    const graph = readGraph();
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as PackageJson;
    // the graph is the real one: the CLI reaches the collector, the probe and PGlite's worker
    const reached = runtimeFiles(graph, ENTRIES);
    expect(reached.has('collector/server.ts')).toBe(true);
    expect(reached.has('probe/agent.ts')).toBe(true);
    expect(reached.has('collector/db/pglite-worker.js')).toBe(true);
    const found = crossings(graph, pkg, ENTRIES);
    expect(found, `crossings:\n${found.join('\n')}`).toEqual([]);
  });

  it('reports each crossing of a synthetic graph as file → import (rule)', () => {
    const file = (path: string, text: string): [string, Import[]] => [path, importsOf(path, text)];
    const graph: Graph = new Map([
      file('bin/silentdrop.js', `await import('../cli/main.ts');`),
      file('cli/main.ts', `import { go } from '../probe/agent.ts';\nimport '../collector/server.ts';`),
      file(
        'probe/agent.ts',
        `import { Db } from '../collector/db/open.ts';\nexport * from '../protocol/index.ts';\n` +
          `// import '../collector/comment.ts' is only a comment\nconst p = await import('puppeteer-core');`,
      ),
      file(
        'collector/server.ts',
        `import type { Agent } from '../probe/agent.ts';\nimport { sql } from 'drizzle-orm';\n` +
          `import { build } from 'vite';\nimport type { UserConfig } from 'vite';\n` +
          `new Worker(new URL('./db/worker.js', import.meta.url));`,
      ),
      file('collector/db/worker.js', `import { PGlite } from '@electric-sql/pglite';\nimport 'vitest';`),
      file('collector/db/open.ts', `import pg from 'pg';\nimport { drizzle } from 'drizzle-orm/pglite';`),
      file('testbed/engine.ts', `import type { Campaign } from '../protocol/index.ts';`),
      file('protocol/index.ts', `export { thing } from '../collector/errors.ts';`),
      file('collector/http/dashboard.ts', `const { build } = await import('vite');`),
      file('collector/tool.test.ts', `import '../probe/agent.ts';\nimport 'vitest';`),
      file('dashboard/src/main.ts', `import { x } from '../../collector/db/open.ts';\nimport 'vite';`),
    ]);
    const pkg: PackageJson = {
      dependencies: { pg: '1', 'drizzle-orm': '1', '@electric-sql/pglite': '1' },
      devDependencies: { vite: '1', vitest: '1' },
      optionalDependencies: { 'puppeteer-core': '1' },
    };
    expect(crossings(graph, pkg, ['bin/silentdrop.js'])).toEqual([
      'collector/db/worker.js → vitest (no dev dependency at run time)',
      'collector/server.ts → ../probe/agent.ts (probe ↔ collector never)',
      'collector/server.ts → drizzle-orm (only collector/db/ imports pg, PGlite and drizzle)',
      'collector/server.ts → vite (no dev dependency at run time)',
      'probe/agent.ts → ../collector/db/open.ts (probe ↔ collector never)',
      'probe/agent.ts → puppeteer-core (only the browser adapter imports puppeteer)',
      'protocol/index.ts → ../collector/errors.ts (protocol imports nothing of the project)',
      'testbed/engine.ts → ../protocol/index.ts (testbed imports nothing of the project)',
    ]);
  });
});
