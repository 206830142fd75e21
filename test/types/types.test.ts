import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const repo = fileURLToPath(new URL('../..', import.meta.url));

describe('the public API for strict TypeScript users', () => {
  // strict-api.ts holds the checks (unknown messages and replies; types inferred for jobs, actors and
  // MapReduce), against the built declarations in dist/: run `npx tsc -p .` first.
  it('compiles test/types/strict-api.ts, where every @ts-expect-error is still an error', async () => {
    const result = await run(process.execPath, [`${repo}node_modules/typescript/bin/tsc`, '-p', 'test/types/tsconfig.json'], { cwd: repo, timeout: 90_000 }).catch(
      (error: { stdout?: string; code?: number }) => ({ stdout: error.stdout ?? String(error), code: error.code }),
    );
    expect(result.stdout).toBe('');
  }, 120_000);
});
