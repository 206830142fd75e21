import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);

/**
 * Bounds for a hung example, not a pace. Each example starts its own local cluster (2 daemons
 * and their workers: 1-3 s idle) and does its work; with both cores busy (load 10-20 on 2 cores)
 * the same takes 5-10 times longer. The test's own bound is a little above the child's, so a hung
 * example fails with its output rather than a bare test timeout.
 */
const EXAMPLE_TIMEOUT_MS = 100_000;
const TEST_TIMEOUT_MS = 110_000;
const example = (path: string) => fileURLToPath(new URL(`../../dist/examples/${path}`, import.meta.url));

describe('examples', { timeout: TEST_TIMEOUT_MS }, () => {
  it('ping-pong runs two nodes in two OS processes to completion and reports the rate', async () => {
    const { stdout } = await run(process.execPath, [example('ping-pong/main.js'), '300'], { timeout: EXAMPLE_TIMEOUT_MS });
    expect(stdout).toMatch(/^300 round trips in [\d.]+ s: [\d,]+ round trips\/s, latency p50 \d+ µs, p99 \d+ µs$/m);
  });

  it('ping-pong rejects a bad round count with a usage message', async () => {
    await expect(run(process.execPath, [example('ping-pong/main.js'), 'many'], { timeout: EXAMPLE_TIMEOUT_MS })).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringContaining('usage'),
    });
  });

  it('cpi computes pi with 5 ranks (bcast, allreduce, reduce, a Float64Array allreduce) on a local cluster, and exits 0', async () => {
    const { stdout } = await run(process.execPath, [example('cpi/main.js'), '--ranks', '5', '--intervals', '200000'], { timeout: EXAMPLE_TIMEOUT_MS });
    const match = /^pi is approximately (3\.\d{16}), error is ([\d.]+e[-+]\d+)$/m.exec(stdout);
    expect(match).not.toBeNull();
    expect(Math.abs(Number(match![1]) - Math.PI)).toBeLessThan(1e-9);
    expect(stdout).toMatch(/^5 ranks in [12] worker processes, 200,000 intervals, \d+ ms from start to results$/m);
    expect(stdout).toMatch(/^rank times \(ms, all-reduced as a Float64Array\): \[[\d.]+(, [\d.]+){4}\]$/m);
    expect(stdout).toMatch(/^all ok$/m);
  });

  it('heat solves the 1-D heat equation on 3 ranks with halo exchanges (sendrecv) and matches the single-process run exactly', async () => {
    const { stdout } = await run(process.execPath, [example('heat/main.js'), '--ranks', '3', '--points', '60', '--steps', '100'], { timeout: EXAMPLE_TIMEOUT_MS });
    expect(stdout).toMatch(/^3 ranks, 60 points, 100 steps \(t = [\d.]+e-\d+\)$/m);
    expect(stdout).toMatch(/^max difference from the single-process run: 0$/m);
    const error = /^max error against the exact solution: ([\d.]+e-\d+)$/m.exec(stdout);
    expect(Number(error![1])).toBeLessThan(1e-3);
    expect(stdout).toMatch(/^time: \d+ ms in the slowest rank's steps \(\d+ µs a step, two halo exchanges\), \d+ ms from start to results; alone: [\d.]+ ms$/m);
    expect(stdout).toMatch(/^all ok$/m);
  });

  it('heat rejects fewer points than ranks with a usage message', async () => {
    await expect(run(process.execPath, [example('heat/main.js'), '--ranks', '4', '--points', '2'], { timeout: EXAMPLE_TIMEOUT_MS })).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringContaining('usage'),
    });
  });

  it("docs/groups.md's first code block runs as written (compiled from TypeScript) and prints 4 ranks' results", async () => {
    const guide = readFileSync(fileURLToPath(new URL('../../docs/groups.md', import.meta.url)), 'utf8');
    const block = /```ts\n([\s\S]*?)```/.exec(guide)![1]!;
    // Inside dist/, `import ... from 'zerocos'` resolves to this package (its own name).
    const file = fileURLToPath(new URL('../../dist/readme-process-groups.mjs', import.meta.url));
    writeFileSync(file, ts.transpileModule(block, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText);
    try {
      const { stdout } = await run(process.execPath, [file], { timeout: EXAMPLE_TIMEOUT_MS });
      const halos = [...stdout.matchAll(/pi: 3\.14159265358\d+, halo: (\d), total: \[ 6, 4 \]/g)].map((m) => Number(m[1]));
      expect(halos).toEqual([3, 0, 1, 2]);
    } finally {
      rmSync(file, { force: true });
    }
  });

  // Each starts its own local cluster of 2 daemons (1-3 s) and takes 1.5-3 s in all here.
  it('tasks runs square, the matrix tree, wait and a remote error on a local cluster, and exits 0', async () => {
    const { stdout } = await run(process.execPath, [example('tasks/main.js')], { timeout: EXAMPLE_TIMEOUT_MS });
    expect(stdout).toMatch(/^squares: \[0, 1, 4, 9\]$/m);
    expect(stdout).toMatch(/^sum\(mul\(a, b\), mul\(c, d\)\) on 128x128: ok in [\d.]+ ms$/m);
    expect(stdout).toMatch(/^wait: submitted \[500, 100, 300, 200\], finished \[100, /m);
    expect(stdout).toMatch(/^error: RangeError: cannot take the square root of -4 \(on worker-/m);
    expect(stdout).toMatch(/^ {2}remote at check \(zerocos-fn\/checkedSqrt\//m);
    expect(stdout).toMatch(/^all ok$/m);
  });

  it('actors runs the counters, the named log and kill on a local cluster, and exits 0', async () => {
    const { stdout } = await run(process.execPath, [example('actors/main.js')], { timeout: EXAMPLE_TIMEOUT_MS });
    expect(stdout).toMatch(/^counters: \[3, 3, 3, 3\]$/m);
    expect(stdout).toMatch(/^log: 20 messages from 20 tasks, read through getActor\('log'\)/m);
    expect(stdout).toMatch(/^kill: ActorDiedError: actor .* is dead \(killed\)$/m);
    expect(stdout).toMatch(/^kill: the other counters still answer: \[3, 3, 3\]$/m);
    expect(stdout).toMatch(/^all ok$/m);
  });

  it('job-cluster runs 10 jobs on a local cluster, prints each as it ends with its host and times, and exits 0', async () => {
    const { stdout } = await run(process.execPath, [example('job-cluster/main.js')], { timeout: EXAMPLE_TIMEOUT_MS });
    // Not a terminal: no progress line, so nothing but whole lines.
    expect(stdout).not.toMatch(/[\r\x1b]/);
    const jobLine = /^job +(\d+): host (\S+) \((local-[01])\), result \[(\S+), (\d+)\], started \+([\d.]+) s, ended \+([\d.]+) s$/;
    const jobs = stdout.split('\n').flatMap((line) => {
      const match = jobLine.exec(line);
      return match ? [{ id: Number(match[1]), host: match[2], resultHost: match[4], started: Number(match[6]), ended: Number(match[7]) }] : [];
    });
    expect(jobs.map((job) => job.id).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    for (const job of jobs) {
      expect(job.resultHost).toBe(job.host);
      expect(job.ended).toBeGreaterThan(job.started);
    }
    // Printed as they ended: completion order, which is not submission order here. An end time is
    // the worker's clock when the job ended, and a job is printed when its result arrives: two
    // jobs ending on two workers within a delivery apart may arrive swapped (seen with both cores
    // busy: +1.08 s printed before +1.07 s). So each end may precede the one printed before it by
    // at most that much, well under the gaps this example's durations make between its jobs.
    const ends = jobs.map((job) => job.ended);
    const DELIVERY_S = 0.2;
    for (let i = 1; i < ends.length; i++) expect(ends[i]!).toBeGreaterThanOrEqual(ends[i - 1]! - DELIVERY_S);
    expect(jobs.map((job) => job.id)).not.toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(stdout).toMatch(/^node local-0 up: \d+ workers?$/m);
    expect(stdout).toMatch(/^10 jobs: 10 finished in [\d.]+ s, on 2 nodes of 1 host$/m);
    expect(stdout).toMatch(/^all ok$/m);
  });

  // 20 000 readings are 2 s of event time: 11 window starts × 4 sensors; ~0.5 s of streaming here.
  it('streaming aggregates sensor readings in sliding windows on a local cluster, checks them, and exits 0', async () => {
    const { stdout } = await run(process.execPath, [example('streaming/main.js'), '--events', '20000'], { timeout: EXAMPLE_TIMEOUT_MS });
    const windowLine = /^\[ *(-?[\d.]+), +(-?[\d.]+)\) s {2}s0 +(\d+) /;
    const starts = stdout.split('\n').flatMap((line) => {
      const match = windowLine.exec(line);
      return match ? [Number(match[1])] : [];
    });
    expect(starts).toHaveLength(11);
    expect(new Set(starts).size).toBe(11);
    expect(stdout).toMatch(/^20,000 events in [\d.]+ s: [\d,]+ events\/s; 44 windows \(11 starts × 4 sensors\)/m);
    expect(stdout).toMatch(/^check: all 44 windows equal the local computation$/m);
    expect(stdout).toMatch(/^check: per-window counts by phase .* = 20,000 events$/m);
    expect(stdout).toMatch(/^all ok$/m);
  });

  it('streaming rejects a bad --events value with a usage message', async () => {
    await expect(run(process.execPath, [example('streaming/main.js'), '--events', 'lots'], { timeout: EXAMPLE_TIMEOUT_MS })).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringContaining('usage'),
    });
  });

  it.each(['tasks', 'actors', 'job-cluster'])('%s rejects an unknown flag with a usage message', async (name) => {
    await expect(run(process.execPath, [example(`${name}/main.js`), '--bogus'], { timeout: EXAMPLE_TIMEOUT_MS })).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringContaining('usage'),
    });
  });

  // --mb 1: 8 files, ~175 000 words; 2-4 s here with the local cluster's start-up. The corpus is cached in the OS temp directory.
  it('wordcount counts a generated corpus with MapReduce on a local cluster, prints the top 20 and matches the single-process count', async () => {
    const { stdout } = await run(process.execPath, [example('wordcount/main.js'), '--mb', '1'], { timeout: EXAMPLE_TIMEOUT_MS });
    // Not a terminal: no progress bar.
    expect(stdout).not.toMatch(/[\r\x1b]/);
    expect(stdout).toMatch(/^corpus: 1\.0 MB, [\d,]+ words in 8 files in \S+zerocos-wordcount-[0-9a-f]{12} \((cached|generated in [\d.]+ s)\)$/m);
    expect(stdout).toMatch(/^started a local cluster: 2 daemons, 2 workers \([\d.]+ s\)$/m);
    // 8 files on 2 workers: guided tasks of 2, 2, 1, 1, 1, 1 files.
    expect(stdout).toMatch(/^maps: 6 tasks \(8 files\) done in [\d.]+ s$/m);
    expect(stdout).toMatch(/^reduces: 2 done in [\d.]+ s$/m);
    expect(stdout).toMatch(/^MapReduce: [\d,]+ words, [\d,]+ distinct, in [\d.]+ s on 2 workers$/m);
    const top = stdout.split('\n').filter((line) => /^ +\d+\. [a-z]+ +[\d,]+$/.test(line));
    expect(top).toHaveLength(20);
    expect(top[0]).toMatch(/^ +1\. the /);
    expect(stdout).toMatch(/^single-process count: [\d.]+ s; MapReduce on \d+ workers took [\d.]+× its time$/m);
    expect(stdout).toMatch(/^matches the single-process count$/m);
  });

  it('wordcount rejects a bad --mb value with a usage message', async () => {
    await expect(run(process.execPath, [example('wordcount/main.js'), '--mb', 'huge'], { timeout: EXAMPLE_TIMEOUT_MS })).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringContaining('usage'),
    });
  });
});
