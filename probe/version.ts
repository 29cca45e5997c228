/** The probe software's version, reported at registration and check-in and stored with events. */
import { readFileSync } from 'node:fs';

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      version?: string;
    };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

export const SOFTWARE_VERSION = `silentdrop-probe/${packageVersion()}`;
