/**
 * A dispy-style job cluster: dispy's sample program, ported. One computation, `compute(n)`
 * (compute.ts: waits n tenths of a second, returns `[host, n]`), run by 10 jobs with different
 * n; each job is printed as it ends (completion order, not submission order) with its id, host,
 * result and times (since the first submission). On a terminal a progress line is redrawn below them; piped, nothing else.
 *
 *   node dist/examples/job-cluster/main.js                          (starts a local cluster of 2 daemons)
 *   node dist/examples/job-cluster/main.js --peers 127.0.0.1:9740   (joins running daemons instead)
 *
 * Exits 1 on a wrong result.
 */
import { JobCluster, type Job, type JobClusterStats } from 'zerocos';
import { peersFlag } from '../support/peers-flag.js';

const peers = peersFlag();

/** n of each job, in tenths of a second: about 2 s of waiting on 2 workers. */
const DURATIONS = [5, 2, 8, 1, 4, 7, 3, 6, 2, 5];

/** A one-line progress display redrawn in place on a terminal; when stdout is not one, only the lines printed. */
class Progress {
  private shown = '';

  constructor(private readonly tty: boolean) {}

  /** Prints a line above the progress line. */
  print(line: string): void {
    if (this.shown) process.stdout.write('\r\x1b[K');
    console.log(line);
    if (this.shown) process.stdout.write(this.shown);
  }

  draw(stats: JobClusterStats): void {
    if (!this.tty) return;
    const ended = stats.finished + stats.terminated + stats.abandoned + stats.cancelled;
    const total = ended + stats.created + stats.running;
    const width = 20;
    const filled = total === 0 ? 0 : Math.round((ended / total) * width);
    this.shown = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${ended}/${total} ended, ${stats.running} running, ${stats.created} waiting`;
    process.stdout.write(`\r\x1b[K${this.shown}`);
  }

  clear(): void {
    if (this.shown) process.stdout.write('\r\x1b[K');
    this.shown = '';
  }
}

// With no init() in this process, create() connects by itself: to --peers, or to a local
// cluster of 2 daemons that it starts (and stops again at close()).
const progress = new Progress(process.stdout.isTTY === true);
console.log(peers.length > 0 ? `joining ${peers.join(', ')}` : 'starting a local cluster of 2 daemons');
const cluster = await JobCluster.create<[number], [string, number]>(
  { module: new URL('./compute.js', import.meta.url), export: 'compute' },
  {
    ...(peers.length > 0 ? { peers } : {}),
    onNodeStatus: (node, status) => progress.print(`node ${node.name} ${status}: ${node.workers} worker${node.workers === 1 ? '' : 's'}`),
    // dispy's callback: called at every status change of every job.
    onJobStatus: () => progress.draw(cluster.stats()),
  },
);
const began = Date.now();
const seconds = (epochMs: number | undefined) => (epochMs === undefined ? '?' : `+${((epochMs - began) / 1000).toFixed(2)} s`);
const jobs = DURATIONS.map((n) => cluster.submit(n));
let ok = true;
for await (const job of cluster.finished()) ok = report(job) && ok;
const nodes = new Set(jobs.map((job) => job.node));
const hosts = new Set(jobs.map((job) => job.host));
progress.clear();
console.log(
  `${jobs.length} jobs: ${cluster.stats().finished} finished in ${((Date.now() - began) / 1000).toFixed(1)} s, ` +
    `on ${nodes.size} node${nodes.size === 1 ? '' : 's'} of ${hosts.size} host${hosts.size === 1 ? '' : 's'}`,
);
await cluster.close();
console.log(ok ? 'all ok' : 'FAILED');
process.exitCode = ok ? 0 : 1;

/** Prints one ended job; true when its result is `[its host, its n]`. */
function report(job: Job<[string, number]>): boolean {
  const [host, n] = job.result ?? [];
  const right = job.status === 'finished' && n === job.args[0] && host === job.host;
  const result = job.status === 'finished' ? `[${host}, ${n}]` : `${job.status}: ${job.exception?.message}`;
  progress.print(
    `job ${String(job.id).padStart(2)}: host ${job.host} (${job.node?.split(':')[0]}), result ${result}, ` +
      `started ${seconds(job.startTime)}, ended ${seconds(job.endTime)}${right ? '' : '  WRONG'}`,
  );
  return right;
}
