/**
 * `npm run bench` runs every benchmark; `npm run bench -- NAME` runs one. Each prints its
 * figures beside a baseline measured in the same run, then one JSON line {"bench": NAME, ...}
 * (one per object when a benchmark returns several, e.g. one per cluster size).
 */
import { runCluster } from './cluster.js';
import { runClusterBusy } from './cluster-busy.js';
import { runCollective } from './collective.js';
import { runJobs } from './jobs.js';
import { runMessaging } from './messaging.js';
import { runStreaming } from './streaming.js';
import { runTasks } from './tasks.js';
import { runWordcount } from './wordcount.js';

const benches: Record<string, () => Promise<object | object[]>> = {
  messaging: runMessaging,
  tasks: runTasks,
  streaming: runStreaming,
  jobs: runJobs,
  wordcount: runWordcount,
  collective: runCollective,
  // After the others: its up to 32 daemons left the load average at 13.8 when the tasks bench
  // began right after it, and the worker_threads baseline at 160k/s against 259k/s rested.
  cluster: runCluster,
  // Last: its 60 s of 6 CPU burners leave this VM slow for minutes (the worker_threads baseline
  // one request at a time ran at 7,330/s right after it, 31,758/s on a rested machine).
  'cluster-busy': runClusterBusy,
  // The name issue 17 uses.
  collectives: runCollective,
};

const wanted = process.argv.slice(2);
const unknown = wanted.filter((name) => !(name in benches));
if (unknown.length > 0) {
  console.error(`unknown benchmark ${unknown.join(', ')}; known: ${Object.keys(benches).join(', ')}`);
  process.exit(2);
}
for (const name of wanted.length > 0 ? wanted : Object.keys(benches).filter((name) => name !== 'collectives')) {
  console.log(`# ${name}`);
  const figures = await benches[name]!();
  for (const row of Array.isArray(figures) ? figures : [figures]) console.log(JSON.stringify({ bench: name, ...row }));
}
process.exit(0);
