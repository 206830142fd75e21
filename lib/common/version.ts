import { readFileSync } from 'node:fs';

/**
 * The version in zerocos's own package.json, found by walking up from this module (it runs
 * from `lib/common` under a test runner and from `dist/lib/common` once built); `'unknown'` when
 * none is found.
 */
export function packageVersion(): string {
  for (let up = 2; up <= 4; up++) {
    try {
      const manifest = JSON.parse(readFileSync(new URL(`${'../'.repeat(up)}package.json`, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (manifest.name === 'zerocos' && typeof manifest.version === 'string') return manifest.version;
    } catch {
      // Not at this level: look one higher.
    }
  }
  return 'unknown';
}
