import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RemoteError, currentSession, mapReduce, type MapReduceProgress, type Session } from '../../lib/internal.js';
import { addCounts, countWords, ensureCorpus, mapWords, sumCounts, type Corpus } from '../../examples/wordcount/corpus.js';
import { eventually } from '../support/eventually.js';
import { childPids, isAlive, startSession, stopSession } from '../support/session.js';

let scratch: string;
/** ~0.4 MB of text in 8 files (~70 000 words, ~5 500 lines). */
let corpus: Corpus;
let lines: string[];
let expected: Map<string, number>;

beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), 'zerocos-mapreduce-'));
  corpus = ensureCorpus({ mb: 0.4, files: 8, root: scratch });
  lines = corpus.files.flatMap((path) => readFileSync(path, 'utf8').split('\n'));
  expected = countWords(corpus.files);
});

afterAll(() => {
  rmSync(scratch, { recursive: true, force: true });
});

/** The same map as mapWords, spinning 0.25 ms per line first: a map task of 200 lines takes 50 ms. */
const slowMapWords = (line: string, emit: (word: string, n: number) => void): void => {
  const until = performance.now() + 0.25;
  while (performance.now() < until);
  for (const word of line.toLowerCase().split(/[^a-z]+/)) if (word) emit(word, 1);
};

// First, while this process has no session.
describe('mapReduce without init()', () => {
  it('starts a local cluster of its own for the run and stops it after', async () => {
    const counts = await mapReduce({ input: corpus.files, files: true, map: mapWords, reduce: sumCounts, cluster: { local: { daemons: 1, cpus: 1 } } }).collect();
    expect(counts).toEqual(expected);
    expect(currentSession()).toBeUndefined();
  });
});

describe('mapReduce on a healthy cluster', () => {
  let session: Session;
  beforeAll(async () => {
    session = await startSession({ local: { daemons: 2, cpus: 1 } });
  });
  afterAll(async () => {
    await stopSession(session);
  });

  const cases = (['records', 'files'] as const).flatMap((mode) =>
    (['none', 'combine', 'fold'] as const).flatMap((combine) => [1, 3].map((partitions) => ({ mode, combine, partitions }))),
  );
  it.each(cases)('counts words like a single process: $mode, map-side $combine, $partitions partition(s)', async ({ mode, combine, partitions }) => {
    const counts = await mapReduce({
      input: mode === 'files' ? corpus.files : lines,
      files: mode === 'files',
      map: mapWords,
      reduce: sumCounts,
      ...(combine === 'combine' ? { combine: sumCounts } : {}),
      ...(combine === 'fold' ? { fold: addCounts } : {}),
      partitions,
    }).collect();
    expect(counts).toEqual(expected);
  });

  it('cuts an array of files into guided map tasks (fewer than the files, their number known from the first event), or one file a task with chunkSize 1', async () => {
    const planned = mapReduce({ input: corpus.files, files: true, map: mapWords, fold: addCounts, reduce: sumCounts });
    const totals: number[] = [];
    planned.on('progress', (p: MapReduceProgress) => totals.push(p.mapsTotal));
    expect(await planned.collect()).toEqual(expected);
    // 8 files on 2 workers: 2, 2, 1, 1, 1, 1.
    expect(new Set(totals)).toEqual(new Set([6]));
    expect(planned.progress).toMatchObject({ mapsDone: 6, mapsTotal: 6, inputDone: true });

    const perFile = mapReduce({ input: corpus.files, files: true, chunkSize: 1, map: mapWords, fold: addCounts, reduce: sumCounts });
    expect(await perFile.collect()).toEqual(expected);
    expect(perFile.progress).toMatchObject({ mapsDone: 8, mapsTotal: 8 });
  });

  it('takes pairs returned or yielded by map, and reduces to any value', async () => {
    const run = mapReduce({
      input: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
      chunkSize: 3,
      map: function* (n: number) {
        yield [n % 2 === 0 ? 'even' : 'odd', n] as [string, number];
        yield ['all', n] as [string, number];
      },
      reduce: (_key: string, values: number[]) => [...values].sort((a, b) => a - b),
    });
    expect(await run.collect()).toEqual(new Map([['odd', [1, 3, 5, 7, 9]], ['even', [2, 4, 6, 8, 10]], ['all', [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]]]));
  });

  it('reports progress up to its totals, one partition event per reducer, and iterates the same pairs', async () => {
    const events: MapReduceProgress[] = [];
    const partitions: number[] = [];
    const run = mapReduce({ input: lines, chunkSize: 500, map: mapWords, combine: sumCounts, reduce: sumCounts, partitions: 3 });
    run.on('progress', (progress) => events.push(progress));
    run.on('partition', (partition, pairs) => {
      partitions.push(partition);
      expect(pairs.length).toBeGreaterThan(0);
    });
    const iterated = new Map<string, number>();
    for await (const [word, n] of run) {
      expect(iterated.has(word)).toBe(false);
      iterated.set(word, n);
    }
    expect(iterated).toEqual(expected);
    expect(await run.collect()).toEqual(expected);

    const maps = Math.ceil(lines.length / 500);
    const last = events.at(-1)!;
    expect(last).toEqual({ mapsDone: maps, mapsTotal: maps, reducesDone: 3, reducesTotal: 3, mapsRerun: 0, inputDone: true });
    expect(partitions.sort()).toEqual([0, 1, 2]);
    // Counts only grow, and no reducer starts before every map has finished.
    for (let i = 1; i < events.length; i++) {
      expect(events[i]!.mapsDone).toBeGreaterThanOrEqual(events[i - 1]!.mapsDone);
      expect(events[i]!.reducesDone).toBeGreaterThanOrEqual(events[i - 1]!.reducesDone);
      if (events[i]!.reducesTotal > 0) expect(events[i]!.mapsDone).toBe(maps);
    }
  });

  it('fails the run with a RemoteError carrying the original error when a map throws', async () => {
    const run = mapReduce({
      input: lines,
      chunkSize: 500,
      map: function refuseThe(line: string, emit: (word: string, n: number) => void) {
        if (/\bthe\b/i.test(line)) throw new RangeError(`refusing: ${line.slice(0, 20)}`);
        emit(line, 1);
      },
      reduce: (_line: string, ones: number[]) => ones.length,
    });
    const failure = await run.collect().catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(RemoteError);
    expect(failure).toMatchObject({ remoteName: 'RangeError', message: expect.stringMatching(/^refusing: /) });
    expect((failure as RemoteError).remoteStack).toMatch(/zerocos-fn\/refuseThe\//);
    // Iterating it fails the same way.
    await expect((async () => {
      for await (const _ of run);
    })()).rejects.toBeInstanceOf(RemoteError);
  });
});

// Each kill test gets its own cluster of 2 daemons × 2 workers, and kills daemon 1 (SIGKILL).
// Each test starts a fresh cluster (2 daemons, 4 workers), runs a MapReduce and waits for a killed
// daemon to be detected: 10-20 s with both cores busy, past the 60 s default once in 5 runs at load 20.
describe('mapReduce when a daemon is SIGKILLed', { timeout: 150_000 }, () => {
  let session: Session | undefined;
  const orphans = new Set<number>();
  /** Starts a fresh cluster (the previous test's has lost a daemon). */
  const freshCluster = async () => {
    await stopSession(session, orphans);
    session = await startSession({ local: { daemons: 2, cpus: 2 } });
    return session;
  };
  afterAll(async () => {
    await stopSession(session, orphans);
  });

  /** SIGKILLs daemon 1 (its workers exit with it); resolves once all of them are gone. */
  const killDaemon1 = (current: Session) => {
    const daemon = current.local!.daemons[1]!;
    const itsWorkers = childPids(daemon.pid);
    for (const pid of itsWorkers) orphans.add(pid);
    process.kill(daemon.pid, 'SIGKILL');
    return { daemon, itsWorkers };
  };

  it('gives the single-process count when a daemon is killed while the maps run', async () => {
    const current = await freshCluster();
    const before = current.runtime.stats();
    // 200 lines a map task at 0.25 ms a line: ~28 maps of 50 ms over 4 workers (on 2 cores).
    const maps = Math.ceil(lines.length / 200);
    let killedAt: MapReduceProgress | undefined;
    let killed: ReturnType<typeof killDaemon1> | undefined;
    const run = mapReduce({ input: lines, chunkSize: 200, map: slowMapWords, combine: sumCounts, reduce: sumCounts, partitions: 4 });
    let last: MapReduceProgress | undefined;
    run.on('progress', (progress) => {
      last = progress;
      if (!killed && progress.mapsDone >= 2) {
        killedAt = progress;
        killed = killDaemon1(current);
      }
    });
    expect(await run.collect()).toEqual(expected);
    expect(killedAt!.mapsDone).toBeLessThan(maps);
    expect(await killed!.daemon.exited).toBe('SIGKILL');
    // Its maps were run again: those running (task retries) and those done (lost outputs).
    const retried = current.runtime.stats().retried - before.retried;
    expect(retried + last!.mapsRerun).toBeGreaterThanOrEqual(1);
    expect(last).toMatchObject({ mapsDone: maps, mapsTotal: maps, reducesDone: 4, reducesTotal: 4 });
    await eventually(() => expect(killed!.itsWorkers.filter(isAlive)).toEqual([]));
  });

  it('re-runs the lost map outputs when a daemon is killed after the maps, before the reduces: the single-process count', async () => {
    const current = await freshCluster();
    const maps = Math.ceil(lines.length / 400);
    let killedAt: MapReduceProgress | undefined;
    let last: MapReduceProgress | undefined;
    const run = mapReduce({ input: lines, chunkSize: 400, map: mapWords, combine: sumCounts, reduce: sumCounts, partitions: 8 });
    run.on('progress', (progress) => {
      last = progress;
      // This event comes as the reduce phase starts, before any reduce task is sent: every
      // map output held on daemon 1's workers is lost, and the maps that made them must run again.
      if (!killedAt && progress.reducesTotal > 0) {
        killedAt = progress;
        killDaemon1(current);
      }
    });
    expect(await run.collect()).toEqual(expected);
    expect(killedAt).toMatchObject({ mapsDone: maps, mapsTotal: maps, reducesDone: 0, inputDone: true });
    expect(last!.mapsRerun).toBeGreaterThanOrEqual(1);
    expect(last).toMatchObject({ reducesDone: 8, reducesTotal: 8 });
  });

  it('re-runs lost guided map tasks of several files each (files, fold) when a daemon is killed before the reduces: the single-process count', async () => {
    const current = await freshCluster();
    // 24 files on 4 workers: guided tasks of 3, 3, 3, 2, 2, 2, 2 files, then 7 of one.
    const many = ensureCorpus({ mb: 0.4, files: 24, root: scratch });
    let killedAt: MapReduceProgress | undefined;
    let last: MapReduceProgress | undefined;
    const run = mapReduce({ input: many.files, files: true, map: mapWords, fold: addCounts, reduce: sumCounts });
    run.on('progress', (progress) => {
      last = progress;
      if (!killedAt && progress.reducesTotal > 0) {
        killedAt = progress;
        killDaemon1(current);
      }
    });
    expect(await run.collect()).toEqual(countWords(many.files));
    expect(killedAt).toMatchObject({ mapsDone: 14, mapsTotal: 14, reducesDone: 0, inputDone: true });
    expect(last!.mapsRerun).toBeGreaterThanOrEqual(1);
    expect(last).toMatchObject({ mapsTotal: 14, reducesDone: 4, reducesTotal: 4 });
  });
});
