/**
 * Busy-cluster benchmark: no false `peer:down` while every worker runs CPU-bound user code.
 *
 * Three node-daemons on loopback (defaults: heartbeat 500 ms, failure timeout 2000 ms), each with
 * 2 worker processes, join through the first one's port. Once every daemon reports both others
 * up, a client node in this process calls `['burn', BURN_MS]` on all 6 workers (daemons/worker.ts:
 * one synchronous CPU loop, the worker's event loop blocked the whole time). That is 6 CPU-bound
 * processes on this 2-core machine, beside the 3 daemons and this process. During the burn it
 * counts every `peer:down` line a daemon prints (each one a false positive: nobody died) and
 * reads the daemons' `--stats-ms 1000` lines: heartbeats received per node per second, before
 * the burn (the same-run baseline, ~3 s) and during it (the minimum over every 1 s interval of
 * every daemon). Afterwards every worker must answer `['ping']` again, with the same OS pid.
 *
 * BURN_MS is 60000; the environment variable BENCH_BURN_MS (1..600000) shortens it for a quick
 * check, e.g. `BENCH_BURN_MS=10000 node dist/bench/run.js cluster-busy`.
 *
 * BENCH_DASHBOARD=1 measures what the dashboard and metrics cost: the first daemon then runs with
 * `--dashboard` and `--metrics`, a page's stream (`/events`) stays open through the run, and
 * `/metrics` is scraped every 5 s; compare its daemons' CPU with a run without.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Node, WORKER_PROCESS, loadOrCreateSecret } from 'zerocos/internal';
import { startReadyChild } from '../test/support/child.js';
import { cpuSeconds, DaemonWatcher, mean, round1, round2, sleep, sum, until, type DaemonReady, type PeerDown, type StatsLine } from './support.js';

const DAEMON = fileURLToPath(new URL('../daemons/node-daemon.js', import.meta.url));
// ['burn'] is a worker test hook: the daemons started here (and their workers) inherit this.
process.env['ZEROCOS_TEST_HOOKS'] = '1';
const DAEMONS = 3;
const CPUS_PER_DAEMON = 2;
const DEFAULT_BURN_MS = 60_000;
const MAX_BURN_MS = 600_000;
/** The daemon's defaults, stated here only for the summary (the daemons run with them). */
const HEARTBEAT_MS = 500;
const FAILURE_TIMEOUT_MS = 2000;
const STATS_MS = 1000;
const START_TIMEOUT_MS = 20_000;
const CONVERGE_TIMEOUT_MS = 30_000;
/** The same-run baseline: heartbeat counters over at least this long before the burn. */
const BASELINE_MS = 3000;
const BASELINE_TIMEOUT_MS = 10_000;
/** After the burn should have ended, wait this much more before pinging the workers. */
const MARGIN_MS = 2000;
const PING_TIMEOUT_MS = 15_000;
const PROGRESS_EVERY_MS = 10_000;
const POLL_MS = 20;

/** The JSON line (run.ts adds `"bench": "cluster-busy"`). */
export interface ClusterBusyFigures {
  burn_seconds: number;
  daemons: number;
  workers: number;
  /** `peer:down` lines printed by any daemon from the full view until after the burn (target 0). */
  false_peer_down: number;
  /** Lowest heartbeats received per second by one daemon over any 1 s stats interval inside the burn. */
  min_heartbeats_per_node_s: number | null;
  /** Mean heartbeats received per second per daemon over ~3 s before the burn. */
  baseline_heartbeats_per_node_s: number | null;
}

export async function runClusterBusy(): Promise<ClusterBusyFigures> {
  const began = performance.now();
  const burnMs = burnMsFromEnv();
  const withDashboard = process.env['BENCH_DASHBOARD'] === '1';
  const args = (i: number, seed?: string) => [
    '--host', '127.0.0.1', '--port', '0', '--name', `busy${i}`, '--log-level', 'silent', '--cpus', String(CPUS_PER_DAEMON),
    '--discovery', 'off', '--stats-ms', String(STATS_MS), ...(seed ? ['--peers', seed] : []),
    // The burn needs every worker's node id from the ready line: wait for all of them (up to the start timeout).
    '--worker-start-timeout-ms', String(START_TIMEOUT_MS),
    ...(withDashboard && i === 0 ? ['--dashboard', '127.0.0.1:0', '--metrics', '127.0.0.1:0'] : []),
  ];
  const viewer = new AbortController();
  console.log(
    `${DAEMONS} daemons on 127.0.0.1 (discovery off, seeds → the first), ${CPUS_PER_DAEMON} workers each; ` +
      `daemon defaults: heartbeat ${HEARTBEAT_MS} ms, failure timeout ${FAILURE_TIMEOUT_MS} ms; ${os.availableParallelism()} cores here`,
  );
  console.log(
    `burn = ['burn', ${burnMs}] on every worker: one synchronous CPU loop of ${burnMs / 1000} s each` +
      (burnMs !== DEFAULT_BURN_MS ? ` (BENCH_BURN_MS; the full run is ${DEFAULT_BURN_MS / 1000} s)` : ''),
  );

  const watchers: DaemonWatcher[] = [];
  let client: Node | undefined;
  try {
    // The first daemon is the seed; the others join through its port.
    const first = await startReadyChild<DaemonReady>(DAEMON, args(0), START_TIMEOUT_MS);
    watchers.push(new DaemonWatcher(first));
    const viewing = withDashboard ? watchDashboard(first.ready as DaemonReady & { dashboard: string; metrics: string }, viewer.signal) : undefined;
    const seed = `127.0.0.1:${new URL(first.ready.endpoint).port}`;
    const rest = await Promise.allSettled(
      Array.from({ length: DAEMONS - 1 }, (_, k) =>
        startReadyChild<DaemonReady>(DAEMON, args(k + 1, seed), START_TIMEOUT_MS).then((daemon) => void watchers.push(new DaemonWatcher(daemon))),
      ),
    );
    const failed = rest.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw failed.reason;

    const fullView = () => watchers.every((w) => watchers.every((other) => other === w || w.upAt.has(other.node)));
    if (!(await until(fullView, performance.now() + CONVERGE_TIMEOUT_MS, POLL_MS))) {
      throw new Error(`no full view within ${CONVERGE_TIMEOUT_MS / 1000} s: ${watchers.map((w) => `${w.node} sees ${w.upAt.size}`).join(', ')}`);
    }
    const viewAt = Date.now();
    const downsBefore = watchers.reduce((sum, w) => sum + w.downs.length, 0);

    const workers = watchers.flatMap((w) =>
      w.daemon.ready.workers.map(({ index, pid, node }) => {
        if (node === undefined) throw new Error(`worker ${index} of ${w.node} was not ready within ${START_TIMEOUT_MS / 1000} s`);
        return { index, pid, node, daemon: w.node };
      }),
    );
    if (workers.length !== DAEMONS * CPUS_PER_DAEMON) throw new Error(`expected ${DAEMONS * CPUS_PER_DAEMON} workers, the ready lines list ${workers.length}`);
    // The daemons hold this user's secret file (secure by default): so must the client.
    client = await Node.start({ name: 'busy-bench', secret: loadOrCreateSecret() });
    const node = client;
    const address = (worker: { node: string }) => ({ name: WORKER_PROCESS, node: worker.node });
    // Connects to every worker (and every worker back to us) before the burn.
    await Promise.all(workers.map((worker) => node.call(address(worker), ['ping'], { timeoutMs: PING_TIMEOUT_MS })));

    // Baseline: heartbeat counters over ≥ BASELINE_MS, ending just before the burn.
    const baselineFrom = Date.now();
    const baselinePairs = new Map<DaemonWatcher, [StatsLine, StatsLine]>();
    const pickBaseline = () => {
      for (const w of watchers) {
        if (baselinePairs.has(w)) continue;
        const a = linesOf(w).find((s) => s.at >= baselineFrom);
        const b = a && linesOf(w).find((s) => s.at - a.at >= BASELINE_MS);
        if (a && b) baselinePairs.set(w, [a, b]);
      }
      return baselinePairs.size === watchers.length;
    };
    if (!(await until(pickBaseline, performance.now() + BASELINE_TIMEOUT_MS, POLL_MS))) {
      throw new Error(`stats lines for a ${BASELINE_MS / 1000} s baseline from only ${baselinePairs.size} of ${DAEMONS} daemons`);
    }
    const baselineRates = [...baselinePairs.values()].map(([a, b]) => rate(a, b));
    const baselineSecondRates = watchers.flatMap((w) => intervalRates(linesOf(w), baselineFrom, Date.now()));

    // The burn.
    const loadBefore = loadavg();
    const cpuBefore = new Map(workers.map((worker) => [worker.pid, cpuSeconds(worker.pid)]));
    const daemonCpuBefore = watchers.map((w) => cpuSeconds(w.daemon.pid));
    const burnCalledAt = Date.now();
    const answers = await Promise.all(
      workers.map(async (worker) => {
        const answer = await node.call(address(worker), ['burn', burnMs], { timeoutMs: PING_TIMEOUT_MS });
        return { answer, at: Date.now() };
      }),
    );
    if (answers.some((a) => a.answer !== 'started')) throw new Error(`a burn call answered ${JSON.stringify(answers.map((a) => a.answer))}`);
    const burnFrom = Math.max(...answers.map((a) => a.at));
    const startedWithinMs = burnFrom - burnCalledAt;
    const burnTo = burnFrom + burnMs;
    console.log(`all ${workers.length} workers burning ${startedWithinMs} ms after the calls; until ${new Date(burnTo).toISOString()}`);

    // Proof that the loop blocks: a ping sent now is answered only when its worker's burn ends.
    const probeSentAt = Date.now();
    const probe = node
      .call(address(workers[0]!), ['ping'], { timeoutMs: burnMs + PING_TIMEOUT_MS })
      .then(() => Date.now(), () => null);

    let maxLoad = loadBefore;
    let nextProgress = burnFrom + PROGRESS_EVERY_MS;
    while (Date.now() < burnTo + MARGIN_MS) {
      await sleep(Math.min(1000, Math.max(POLL_MS, burnTo + MARGIN_MS - Date.now())));
      const load = loadavg();
      if (load !== null && (maxLoad === null || load > maxLoad)) maxLoad = load;
      if (Date.now() >= nextProgress && Date.now() < burnTo) {
        nextProgress += PROGRESS_EVERY_MS;
        const downs = watchers.reduce((sum, w) => sum + w.downs.length, 0) - downsBefore;
        console.log(`  ${((Date.now() - burnFrom) / 1000).toFixed(0)} s: peer:down so far ${downs}, loadavg(1 min) ${load ?? 'n/a'}`);
      }
    }

    // Every worker answers again, as the same OS process.
    const pingFrom = Date.now();
    const pongs = await Promise.allSettled(workers.map((worker) => node.call(address(worker), ['info'], { timeoutMs: PING_TIMEOUT_MS })));
    const answered = pongs.filter((p, i) => p.status === 'fulfilled' && (p.value as { pid?: number }).pid === workers[i]!.pid).length;
    const pingMs = Date.now() - pingFrom;
    const checkedAt = Date.now();
    const probeAnsweredAt = await probe;

    const allDowns = watchers.flatMap((w) => w.downs).filter((d) => epochOf(d) >= viewAt && epochOf(d) <= checkedAt);
    const falseDowns = allDowns.length;
    const downsInBurn = allDowns.filter((d) => epochOf(d) >= burnCalledAt && epochOf(d) <= burnTo + MARGIN_MS).length;
    const workerExits = watchers.reduce((sum, w) => sum + w.workerExits.length, 0);
    const cpuAfter = workers.map((worker) => {
      const before = cpuBefore.get(worker.pid);
      const after = cpuSeconds(worker.pid);
      return before != null && after != null ? after - before : null;
    });
    const daemonCpu = watchers.map((w, i) => {
      const after = cpuSeconds(w.daemon.pid);
      return daemonCpuBefore[i] != null && after != null ? after - daemonCpuBefore[i]! : null;
    });

    // During the burn: every 1 s stats interval that lies inside it, on every daemon.
    const burnRates = watchers.flatMap((w) => intervalRates(linesOf(w), burnFrom, burnTo));
    const burnLines = watchers.flatMap((w) => linesOf(w).filter((s) => s.at >= burnFrom && s.at <= burnTo));
    const minUp = burnLines.length ? Math.min(...burnLines.map((s) => s.up)) : null;
    const maxStatsGap = watchers.reduce((worst, w) => {
      const inBurn = linesOf(w).filter((s) => s.at >= burnFrom - STATS_MS && s.at <= burnTo + STATS_MS);
      for (let i = 1; i < inBurn.length; i++) worst = Math.max(worst, inBurn[i]!.at - inBurn[i - 1]!.at);
      return worst;
    }, 0);

    const figures: ClusterBusyFigures = {
      burn_seconds: round2(burnMs / 1000),
      daemons: DAEMONS,
      workers: workers.length,
      false_peer_down: falseDowns,
      min_heartbeats_per_node_s: burnRates.length ? round2(Math.min(...burnRates)) : null,
      baseline_heartbeats_per_node_s: baselineRates.length ? round2(mean(baselineRates)) : null,
    };

    const expected = (DAEMONS - 1) * (1000 / HEARTBEAT_MS);
    const workerCpu = cpuAfter.filter((c): c is number => c !== null);
    const daemonCpuKnown = daemonCpu.filter((c): c is number => c !== null);
    console.log('');
    console.log(`false peer:down                ${falseDowns} (${downsInBurn} during the burn)   target 0: ${falseDowns === 0 ? 'met' : 'NOT met'}`);
    for (const d of allDowns) console.log(`  ${d.by} reported ${d.node} down (${d.reason}) ${((epochOf(d) - burnFrom) / 1000).toFixed(1)} s after the burn began`);
    console.log(`heartbeats received/node/s     baseline ${num(figures.baseline_heartbeats_per_node_s)} (mean over ${BASELINE_MS / 1000} s; its 1 s min ${baselineSecondRates.length ? round2(Math.min(...baselineSecondRates)) : 'n/a'}), expected ≈ ${expected} from ${DAEMONS - 1} peers`);
    console.log(`                               during the burn: min ${num(figures.min_heartbeats_per_node_s)} over ${burnRates.length} intervals of ${STATS_MS / 1000} s, mean ${burnRates.length ? round2(mean(burnRates)) : 'n/a'}`);
    console.log(`daemon stats lines             longest interval ${maxStatsGap} ms (every ${STATS_MS} ms when the daemon's event loop keeps time); members up, min during the burn: ${minUp ?? 'n/a'} of ${DAEMONS - 1}`);
    console.log(`workers                        ${answered}/${workers.length} answered ['info'] as the same OS pid ${pingMs} ms after the margin; worker:exit lines ${workerExits}`);
    console.log(
      `blocked event loop             a ping sent to one worker ${((probeSentAt - burnFrom) / 1000).toFixed(1)} s into the burn was ` +
        (probeAnsweredAt === null ? 'never answered' : `answered ${((probeAnsweredAt - burnFrom) / 1000).toFixed(1)} s into it (the burn lasts ${burnMs / 1000} s)`),
    );
    console.log(`CPU during the burn            workers ${workerCpu.length ? round1(sum(workerCpu)) : 'n/a'} s in all (${workerCpu.map((c) => round1(c)).join(', ')}), daemons ${daemonCpuKnown.map((c) => round2(c)).join(', ')} s, over ${round1((checkedAt - burnFrom) / 1000)} s on ${os.availableParallelism()} cores; loadavg(1 min) ${loadBefore ?? 'n/a'} → max ${maxLoad ?? 'n/a'}`);
    console.log('');
    console.log('Ray declares a node dead after ~20–55 s, Erlang 45–75 s; zerocos declares after 2 s of silence');
    console.log(`  — and with every worker pegged for ${figures.burn_seconds} s it declared ${falseDowns === 0 ? 'nobody' : `${falseDowns} peer(s)`} dead.`);
    if (answered !== workers.length) console.log(`note: ${workers.length - answered} worker(s) did not answer as the same process after the burn`);
    if (viewing) {
      viewer.abort();
      const seen = await viewing;
      console.log(`dashboard + metrics on ${watchers[0]!.node}: ${seen.snapshots} snapshots streamed to one open page, ${seen.scrapes} /metrics scrapes`);
    }
    console.log(`cluster-busy bench wall time ${((performance.now() - began) / 1000).toFixed(1)} s`);
    return figures;
  } finally {
    viewer.abort();
    await client?.stop();
    // Each daemon by its own handle: SIGTERM (a clean leave, which stops its workers), then SIGKILL after the grace.
    await Promise.all(watchers.map((w) => w.daemon.stop(5000)));
  }
}

/** One page open on the dashboard (its SSE stream read to the end) and a scrape of /metrics every 5 s, until `signal`. */
async function watchDashboard(ready: { dashboard: string; metrics: string }, signal: AbortSignal): Promise<{ snapshots: number; scrapes: number }> {
  let snapshots = 0;
  let scrapes = 0;
  const scraper = setInterval(() => void fetch(ready.metrics, { signal }).then((r) => r.text()).then(() => scrapes++, () => undefined), 5000);
  try {
    const response = await fetch(`${ready.dashboard}events`, { signal });
    const decoder = new TextDecoder();
    for await (const chunk of response.body!) snapshots += decoder.decode(chunk as Uint8Array, { stream: true }).split('event: snapshot').length - 1;
  } catch {
    // Aborted at the end of the run.
  } finally {
    clearInterval(scraper);
  }
  return { snapshots, scrapes };
}

function burnMsFromEnv(): number {
  const raw = process.env.BENCH_BURN_MS;
  if (raw === undefined || raw === '') return DEFAULT_BURN_MS;
  const ms = Number(raw);
  if (!Number.isInteger(ms) || ms < 1 || ms > MAX_BURN_MS) throw new Error(`BENCH_BURN_MS must be a whole number of milliseconds from 1 to ${MAX_BURN_MS}, not ${raw}`);
  return ms;
}

/** Heartbeats received per second between two stats lines (the daemon's clock). */
function rate(a: StatsLine, b: StatsLine): number {
  return (b.membership.heartbeatsReceived - a.membership.heartbeatsReceived) / ((b.at - a.at) / 1000);
}

/** The rate over each pair of consecutive stats lines that lies within [from, to] (epoch ms). */
/** The stats lines a daemon printed; this bench compares the daemons' own clocks (`at`, epoch ms). */
const linesOf = (watcher: DaemonWatcher) => watcher.stats.map((seen) => seen.line);

/** When the bench saw a `peer:down` line, in epoch ms (the clock of the burn's bookkeeping). */
const epochOf = (down: PeerDown) => performance.timeOrigin + down.seenAt;

function intervalRates(stats: StatsLine[], from: number, to: number): number[] {
  const inside = stats.filter((s) => s.at >= from && s.at <= to);
  return inside.slice(1).map((b, i) => rate(inside[i]!, b));
}


/** The 1-minute load average from /proc/loadavg; null elsewhere. */
function loadavg(): number | null {
  try {
    return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
  } catch {
    return null;
  }
}


const num = (x: number | null) => (x === null ? 'n/a' : String(x));
