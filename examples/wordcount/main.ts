/**
 * Word count with MapReduce over a generated corpus, checked against a count done here alone.
 *
 *   npm run demo                                          (builds, then runs this with the defaults)
 *   node dist/examples/wordcount/main.js [--mb 80]        (starts a local cluster of 2 daemons)
 *   node dist/examples/wordcount/main.js --peers 127.0.0.1:9740   (joins running daemons instead)
 *
 * The corpus (`--mb` MB of English-looking text, the same for a given size, see corpus.ts) is
 * generated once into a cache directory under `--dir` (default: the OS temp directory) and
 * reused. The workers read the files themselves (`files: true`), so with `--peers` on other
 * hosts, `--dir` must be a path every worker can read (a shared file system).
 *
 * Each map task counts the words of a few files (large tasks first, single files last, see
 * docs/mapreduce.md), folding the counts per word; one reduce task per
 * worker adds up the counts of its share of the words. A progress bar shows the maps and
 * reduces done on a terminal. Then the 20 most frequent words, the time, and the same count
 * done in this process alone, which must match (exit 1 if it does not).
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { init, mapReduce, shutdown, type MapReduceProgress } from 'zerocos';
import { addCounts, countWords, differences, ensureCorpus, mapWords, sumCounts } from './corpus.js';

const USAGE = 'usage: main.js [--mb N (default 80)] [--peers host:port,...] [--dir path]';
let mb = 80;
let peers: string[] = [];
let root: string | undefined;
try {
  const { values } = parseArgs({ options: { mb: { type: 'string' }, peers: { type: 'string' }, dir: { type: 'string' } }, strict: true });
  if (values.mb !== undefined) {
    mb = Number(values.mb);
    if (!(mb > 0) || mb > 100_000) throw new Error(`--mb must be a positive number of megabytes, not ${values.mb}`);
  }
  peers = values.peers ? values.peers.split(',').filter(Boolean) : [];
  root = values.dir;
} catch (error) {
  console.error(`${(error as Error).message}\n${USAGE}`);
  process.exit(2);
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const number = (n: number) => n.toLocaleString('en-US');

const corpus = ensureCorpus({
  mb,
  ...(root !== undefined ? { root } : {}),
  onGenerate: (dir) => console.log(`generating ${mb} MB of text into ${dir} (once: later runs reuse it)`),
});
console.log(
  `corpus: ${(corpus.bytes / 1e6).toFixed(1)} MB, ${number(corpus.words)} words in ${corpus.files.length} files in ${corpus.dir}` +
    (corpus.generated ? ` (generated in ${seconds(corpus.ms)})` : ' (cached)'),
);

const startingAt = performance.now();
const session = await init(peers.length > 0 ? { peers } : { local: { daemons: 2 } });
const workers = session.runtime.workers().length;
console.log(
  session.local
    ? `started a local cluster: ${session.local.daemons.length} daemons, ${workers} workers (${seconds(performance.now() - startingAt)})`
    : `joined ${peers.join(', ')}: ${workers} workers`,
);

/** A one-line bar redrawn in place on a terminal; nothing otherwise (the phase lines below say it all). */
const bar = (() => {
  if (!process.stdout.isTTY) return { draw: (_: MapReduceProgress) => {}, clear: () => {} };
  const width = 30;
  let drawnAt = 0;
  const gauge = (done: number, total: number) => {
    const filled = total > 0 ? Math.round((done / total) * width) : 0;
    return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}`;
  };
  return {
    draw(p: MapReduceProgress) {
      const now = performance.now();
      const last = p.reducesTotal > 0 && p.reducesDone === p.reducesTotal;
      if (now - drawnAt < 50 && !last) return; // at most 20 redraws a second
      drawnAt = now;
      // An array of files is cut into guided map tasks: their number is known from the first event.
      const rerun = p.mapsRerun > 0 ? `  (${p.mapsRerun} re-run)` : '';
      process.stdout.write(`\rmaps ${gauge(p.mapsDone, p.mapsTotal)}  reduces ${gauge(p.reducesDone, p.reducesTotal || workers)}${rerun}\x1b[K`);
    },
    clear: () => process.stdout.write('\r\x1b[K'),
  };
})();

let counts: Map<string, number>;
let last: MapReduceProgress | undefined;
let mapsDoneAt: number | undefined;
const started = performance.now();
try {
  const run = mapReduce({ input: corpus.files, files: true, map: mapWords, fold: addCounts, reduce: sumCounts });
  run.on('progress', (progress) => {
    last = progress;
    if (mapsDoneAt === undefined && progress.inputDone && progress.mapsDone === progress.mapsTotal) mapsDoneAt = performance.now();
    bar.draw(progress);
  });
  try {
    counts = await run.collect();
  } finally {
    bar.clear();
  }
} finally {
  await shutdown();
}
const elapsedMs = performance.now() - started;
const mapMs = (mapsDoneAt ?? started) - started;
console.log(`maps: ${last?.mapsDone} tasks (${corpus.files.length} files) done in ${seconds(mapMs)}${last?.mapsRerun ? ` (${last.mapsRerun} re-run after a worker was lost)` : ''}`);
console.log(`reduces: ${last?.reducesDone} done in ${seconds(elapsedMs - mapMs)}`);

const total = [...counts.values()].reduce((a, b) => a + b, 0);
console.log(`MapReduce: ${number(total)} words, ${number(counts.size)} distinct, in ${seconds(elapsedMs)} on ${workers} workers`);
console.log('top 20 words:');
const top = [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, 20);
top.forEach(([word, n], i) => console.log(`${String(i + 1).padStart(4)}. ${word.padEnd(12)} ${number(n).padStart(12)}`));

const singleStarted = performance.now();
const expected = countWords(corpus.files);
const singleMs = performance.now() - singleStarted;
console.log(`single-process count: ${seconds(singleMs)}; MapReduce on ${workers} workers took ${(elapsedMs / singleMs).toFixed(2)}× its time`);
const wrong = differences(counts, expected);
if (wrong.length === 0) {
  console.log('matches the single-process count');
} else {
  console.log(`DIFFERS from the single-process count:\n  ${wrong.join('\n  ')}`);
  process.exitCode = 1;
}
