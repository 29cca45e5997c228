/** The collector's version (the package's), for pages and logs. */
import { readFileSync } from 'node:fs';

/**
 * From the package's package.json: one folder up from the sources (`collector/version.ts`),
 * two from the compiled code (`dist/collector/version.js`). The probe reads its own the same
 * way (`probe/version.ts`): the two parts share no code but the protocol.
 */
function packageVersion(): string {
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'silentdrop' && pkg.version) return pkg.version;
    } catch {
      // not there: try the next layout
    }
  }
  return '0.0.0';
}

export const COLLECTOR_VERSION = packageVersion();
