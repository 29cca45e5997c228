/** The probe software's version, reported at registration and check-in and stored with events. */
import { readFileSync } from 'node:fs';

/**
 * The package's version from its package.json: one folder up from the sources
 * (`probe/version.ts`), two from the compiled code (`dist/probe/version.js`).
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

export const PACKAGE_VERSION = packageVersion();
export const SOFTWARE_VERSION = `silentdrop-probe/${PACKAGE_VERSION}`;
