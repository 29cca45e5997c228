import { readdir } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { ADAPTERS, adapterNames, loadAdapter } from './registry.ts';

describe('adapter registry', () => {
  it('has one key per adapter folder, equal to the folder name', async () => {
    const folders = (await readdir(import.meta.dirname, { withFileTypes: true }))
      .filter((d) => d.isDirectory())
      .map((d) => d.name)
      .sort();
    const keys: string[] = adapterNames();
    // Another engineer's new folder fails this until its line is added to registry.ts.
    expect({
      foldersWithoutRegistryLine: folders.filter((f) => !keys.includes(f)),
      registryKeysWithoutFolder: keys.filter((k) => !folders.includes(k)),
    }).toEqual({ foldersWithoutRegistryLine: [], registryKeysWithoutFolder: [] });
  });

  it('loads each adapter lazily with a factory named like its key', async () => {
    for (const name of Object.keys(ADAPTERS)) {
      const f = await loadAdapter(name);
      expect(f.name).toBe(name);
      expect(f.version).toMatch(/^\d+\.\d+\.\d+/);
    }
  });

  it('refuses an unknown name, listing the known ones', async () => {
    await expect(loadAdapter('wechat')).rejects.toThrow(
      /unknown adapter "wechat" \(known: .*example, .*testbed/,
    );
  });
});
