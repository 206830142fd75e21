/**
 * `npm run docs` builds the API reference without a warning: a TSDoc `{@link}` that resolves to
 * nothing, a malformed tag, or a guide link TypeDoc cannot follow fails here rather than
 * rendering quietly broken. Converts and validates only (`--emit none`): the rendered pages are
 * what `npm run docs` writes.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const repo = fileURLToPath(new URL('../..', import.meta.url));
const TYPEDOC = fileURLToPath(new URL('../../node_modules/typedoc/bin/typedoc', import.meta.url));
/** A bound for a hung run, not a pace: ~30 s of CPU, several minutes with both cores busy. */
const TIMEOUT_MS = 400_000;

describe('the API reference (npm run docs)', () => {
  it(
    'converts lib/index.ts, the README and the guides with no warning',
    async () => {
      const result = await run(process.execPath, [TYPEDOC, '--emit', 'none', '--treatWarningsAsErrors'], { cwd: repo, timeout: TIMEOUT_MS }).catch(
        (error: Error & { stdout?: string; stderr?: string }) => ({ stdout: `${error.message}\n${error.stdout ?? ''}`, stderr: error.stderr ?? '' }),
      );
      const output = `${result.stdout}${result.stderr}`;
      expect(output).not.toMatch(/\[(warning|error)\]/);
      expect(output).not.toMatch(/Command failed/);
    },
    TIMEOUT_MS + 10_000,
  );
});
