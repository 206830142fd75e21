/**
 * Word count benchmark: MapReduce (`files: true`, counts folded pairwise) over the example's generated
 * corpus (examples/wordcount/corpus.ts, 80 MB, cached in the OS temp directory), on a local
 * cluster of 1 worker and of 2 workers, beside the same count done in this process alone (the
 * same map function, one Map of counts), measured in the same run: each cluster run follows a
 * single-process count, and each cluster is compared with the counts beside its own runs (the
 * speed of these shared machines drifts from minute to minute). Each figure is the median of
 * RUNS runs after a warm-up run on a few files (which ships the code and warms each worker's JIT);
 * every run's result is checked against the single-process count.
 *
 * 2 workers are 2 daemons × 1 worker, not 1 × 2: the layout `init()` and the example use, and
 * what two hosts would be; these machines have 2 cores, so 2 workers is the most that can run
 * at once (the client and the daemons share the cores with them, but are nearly idle while the
 * workers map). The daemons take no part in the data path (reducers fetch the map outputs
 * straight from the map workers), so the one extra daemon process costs only its heartbeats.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { cpuSeconds, round2, sum } from './support.js';
import { addCounts, countWords, differences, ensureCorpus, mapWords, sumCounts, type Corpus } from '../examples/wordcount/corpus.js';
import { init, mapReduce, shutdown, type LocalClusterOptions, type MapReduceProgress } from 'zerocos';

const MB = 80;
const RUNS = 3;
const WARMUP_FILES = 4;

export interface WordcountFigures {
  /** 1-worker time / 2-worker time. */
  speedup_2v1: number;
  /** Single-process time / 2-worker time. */
  vs_single_process: number;
  /** Single-process time / the time 2 plain processes take counting half each at once: the most 2 workers could reach in this window. */
  parallel_ceiling: number;
  /** vs_single_process / parallel_ceiling: the share of what 2 processes could gain that 2 workers got. */
  of_ceiling: number;
  single_process_s: number;
  one_worker_s: number;
  two_workers_s: number;
  /** CPU seconds a run: the single process, and the 2 workers together (the client not counted). */
  single_process_cpu_s: number;
  two_workers_cpu_s: number;
  mb: number;
  words: number;
}

interface ClusterTiming {
  /** Median of the runs, in ms. */
  ms: number;
  runs: number[];
  /** Of the median run: time until the last map finished. */
  mapMs: number;
  /** Over all timed runs: CPU seconds per worker, as a share of the wall time. */
  workerBusy: number[];
  /** CPU seconds per run: all the workers together, and this process (the client). */
  workerCpuS: number;
  clientCpuS: number;
  /** The single-process counts run each just before a cluster run: median ms, runs, CPU s a run. */
  single: { ms: number; runs: number[]; cpuS: number };
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');

export async function runWordcount(): Promise<WordcountFigures> {
  const began = performance.now();
  const corpus = ensureCorpus({ mb: MB });
  console.log(
    `corpus: ${(corpus.bytes / 1e6).toFixed(1)} MB, ${corpus.words.toLocaleString('en-US')} words, ${corpus.files.length} files ` +
      `(${corpus.generated ? `generated in ${seconds(corpus.ms)}` : 'cached'}); each figure: the median of ${RUNS} runs; load average ${load()}`,
  );

  // The first count is the reference (and this process's JIT warm-up). The machine's speed drifts
  // (other work, the host), so each cluster run is paired with a single-process count just before
  // it, and each cluster is compared with its own single-process runs.
  const expected = countWords(corpus.files);
  const one = await timeCluster({ daemons: 1, cpus: 1 }, corpus, expected);
  console.log(describe('1 worker  (1 daemon × 1)', one));
  const two = await timeCluster({ daemons: 2, cpus: 1 }, corpus, expected);
  console.log(describe('2 workers (2 daemons × 1)', two));
  const single = two.single.ms;
  const singleCpuS = two.single.cpuS;
  const ceiling = await timePlainPair(corpus);
  console.log(
    `ceiling: 2 plain processes counting half the files each, at once: ${seconds(ceiling.ms)}, ` +
      `${(ceiling.single / ceiling.ms).toFixed(2)}× the single process beside them (${seconds(ceiling.single)}): what these cores give 2 processes now`,
  );
  console.log(
    `2 workers: ${(one.ms / two.ms).toFixed(2)}× the speed of 1 worker, ${(single / two.ms).toFixed(2)}× the single process; ` +
      `wall time ${seconds(performance.now() - began)}; load average ${load()} (other work on these 2 cores moves every figure)`,
  );
  return {
    speedup_2v1: round2(one.ms / two.ms),
    vs_single_process: round2(single / two.ms),
    parallel_ceiling: round2(ceiling.single / ceiling.ms),
    of_ceiling: round2(single / two.ms / (ceiling.single / ceiling.ms)),
    single_process_s: round2(single / 1000),
    one_worker_s: round2(one.ms / 1000),
    two_workers_s: round2(two.ms / 1000),
    single_process_cpu_s: round2(singleCpuS),
    two_workers_cpu_s: round2(two.workerCpuS),
    mb: MB,
    words: corpus.words,
  };
}

function describe(label: string, timing: ClusterTiming): string {
  const single = timing.single.ms;
  const singleCpuS = timing.single.cpuS;
  return (
    `single process beside it: ${seconds(single)} (runs ${timing.single.runs.map(seconds).join(', ')}); ${singleCpuS.toFixed(2)} CPU s a run\n` +
    `${label}: ${seconds(timing.ms)} (maps ${seconds(timing.mapMs)}, reduces ${seconds(timing.ms - timing.mapMs)}; runs ${timing.runs.map(seconds).join(', ')}), ` +
    `${(timing.ms / single).toFixed(2)}× the single process's time; workers busy ${timing.workerBusy.map((b) => `${Math.round(b * 100)}%`).join(', ')}; ` +
    `CPU s a run: workers ${timing.workerCpuS.toFixed(2)} (${(timing.workerCpuS / singleCpuS).toFixed(2)}× the single process's), client ${timing.clientCpuS.toFixed(2)}`
  );
}

/**
 * The parallel ceiling: two plain Node processes (bench/wordcount-half.ts), each counting half
 * the files, started together; RUNS times, each after a single-process count. Median ms of each.
 */
async function timePlainPair(corpus: Corpus): Promise<{ ms: number; single: number }> {
  const script = fileURLToPath(new URL('./wordcount-half.js', import.meta.url));
  const halves = [corpus.files.filter((_, i) => i % 2 === 0), corpus.files.filter((_, i) => i % 2 === 1)];
  const children = halves.map((files) => fork(script, files, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  const next = (child: ChildProcess) =>
    new Promise<unknown>((resolve, reject) => {
      child.once('message', resolve);
      child.once('exit', (code) => reject(new Error(`wordcount-half exited with ${code}`)));
    });
  try {
    await Promise.all(children.map(next));
    const pairs: number[] = [];
    const singles: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const singleStarted = performance.now();
      countWords(corpus.files);
      singles.push(performance.now() - singleStarted);
      const started = performance.now();
      const answers = children.map(next);
      for (const child of children) child.send('go');
      const words = sum((await Promise.all(answers)).map((answer) => (answer as { words: number }).words));
      pairs.push(performance.now() - started);
      if (words !== corpus.words) throw new Error(`the plain processes counted ${words} words, not ${corpus.words}`);
    }
    return { ms: median(pairs), single: median(singles) };
  } finally {
    for (const child of children) child.kill();
  }
}

const cpuS = (usage: NodeJS.CpuUsage) => (usage.user + usage.system) / 1e6;

/** Starts a local cluster, warms it up, and times RUNS word counts on it, each checked. */
async function timeCluster(local: LocalClusterOptions, corpus: Corpus, expected: Map<string, number>): Promise<ClusterTiming> {
  const session = await init({ local });
  try {
    const count = (files: string[]) => mapReduce({ input: files, files: true, map: mapWords, fold: addCounts, reduce: sumCounts });
    await count(corpus.files.slice(0, WARMUP_FILES)).collect();
    const pids = session.local!.daemons.flatMap((daemon) => daemon.workers.map((worker) => worker.pid));
    const cpuBefore = pids.map((pid) => cpuSeconds(pid) ?? NaN);
    const runs: { ms: number; mapMs: number }[] = [];
    const singleRuns: number[] = [];
    let singleCpuS = 0;
    let clientCpuS = 0;
    for (let i = 0; i < RUNS; i++) {
      const singleCpu = process.cpuUsage();
      const singleStarted = performance.now();
      countWords(corpus.files);
      singleRuns.push(performance.now() - singleStarted);
      singleCpuS += cpuS(process.cpuUsage(singleCpu)) / RUNS;
      const clientBefore = process.cpuUsage();
      const started = performance.now();
      let mapsDoneAt: number | undefined;
      const run = count(corpus.files);
      run.on('progress', (p: MapReduceProgress) => {
        if (mapsDoneAt === undefined && p.inputDone && p.mapsDone === p.mapsTotal) mapsDoneAt = performance.now();
      });
      const counts = await run.collect();
      clientCpuS += cpuS(process.cpuUsage(clientBefore)) / RUNS;
      runs.push({ ms: performance.now() - started, mapMs: (mapsDoneAt ?? started) - started });
      const wrong = differences(counts, expected);
      if (wrong.length > 0) throw new Error(`MapReduce counted differently from the single process: ${wrong.join('; ')}`);
    }
    const wallS = sum(runs.map((r) => r.ms)) / 1000;
    const workerCpu = pids.map((pid, i) => (cpuSeconds(pid) ?? NaN) - cpuBefore[i]!);
    const middle = runs.find((r) => r.ms === median(runs.map((x) => x.ms)))!;
    return {
      ms: middle.ms,
      runs: runs.map((r) => r.ms),
      mapMs: middle.mapMs,
      workerBusy: workerCpu.map((cpu) => cpu / wallS),
      workerCpuS: sum(workerCpu) / RUNS,
      clientCpuS,
      single: { ms: median(singleRuns), runs: singleRuns, cpuS: singleCpuS },
    };
  } finally {
    await shutdown();
  }
}
