import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const example = (path: string) => fileURLToPath(new URL(`../../dist/examples/${path}`, import.meta.url));

describe('examples', () => {
  it('ping-pong runs two nodes in two OS processes to completion and reports the rate', async () => {
    const { stdout } = await run(process.execPath, [example('ping-pong/main.js'), '300'], { timeout: 20_000 });
    expect(stdout).toMatch(/^300 round trips in [\d.]+ s: [\d,]+ round trips\/s, latency p50 \d+ µs, p99 \d+ µs$/m);
  });

  it('ping-pong rejects a bad round count with a usage message', async () => {
    await expect(run(process.execPath, [example('ping-pong/main.js'), 'many'], { timeout: 10_000 })).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringContaining('usage'),
    });
  });
});
