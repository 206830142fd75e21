import { init, mapReduce, shutdown } from 'zerocos';
import { addCounts, ensureCorpus, mapWords, sumCounts } from '/work/wt-perf2/dist/examples/wordcount/corpus.js';
const corpus = ensureCorpus({ mb: 80 });
const session = await init({ local: { daemons: 2, cpus: 1 } });
const count = (files) => mapReduce({ input: files, files: true, map: mapWords, fold: addCounts, reduce: sumCounts });
await count(corpus.files.slice(0, 4)).collect();
console.log('workers', session.local.daemons.flatMap((d) => d.workers.map((w) => w.pid)));
for (let i = 0; i < 2; i++) { const t = performance.now(); await count(corpus.files).collect(); console.log('run', performance.now() - t); }
await shutdown();
