/**
 * The one adapter registry. Keys equal the folder names under probe/adapters/ and the
 * `platform` of an account in the probe config. Adapters load lazily (dynamic import),
 * so a heavy dependency (puppeteer) is only loaded when an account needs it.
 *
 * To add an adapter: copy adapters/example/, rename the folder, add one line here.
 */
import type { AdapterFactory } from './types.ts';

type Loader = () => Promise<{ default: AdapterFactory }>;

export const ADAPTERS = {
  browser: () => import('./browser/index.ts'),
  example: () => import('./example/index.ts'),
  testbed: () => import('./testbed/index.ts'),
  xmpp: () => import('./xmpp/index.ts'),
} satisfies Record<string, Loader>;

export type AdapterName = keyof typeof ADAPTERS;

export function isAdapterName(name: string): name is AdapterName {
  return Object.hasOwn(ADAPTERS, name);
}

export function adapterNames(): AdapterName[] {
  return Object.keys(ADAPTERS).sort() as AdapterName[];
}

/** Loads an adapter's factory by registry key; throws naming the known keys. */
export async function loadAdapter(name: string): Promise<AdapterFactory> {
  if (!isAdapterName(name)) {
    throw new Error(`unknown adapter "${name}" (known: ${adapterNames().join(', ')})`);
  }
  const mod = await ADAPTERS[name]();
  if (mod.default.name !== name) {
    throw new Error(`adapter folder "${name}" exports a factory named "${mod.default.name}"`);
  }
  return mod.default;
}
