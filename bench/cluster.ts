/**
 * Cluster benchmark: N = 2, 4, 8, 16, 32 node-daemons on this host (loopback only) find each
 * other by multicast discovery. For each N it measures the time to a full view (every daemon
 * reports every other one up), the time for every survivor to report a SIGKILLed daemon down,
 * and the heartbeat messages and bytes each node sends per second, divided by its N - 1 peers
 * (constant when the cost per node is linear in N, not N²). Detection is shown beside the
 * published failure-detection times of Ray, Erlang, Moleculer and dispy.
 */
import { randomInt } from 'node:crypto';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { startReadyChild } from '../test/support/child.js';
import { cpuSeconds, DaemonWatcher, mean, round1, round2, sleep, until, type DaemonReady, type StatsLine } from './support.js';

const DAEMON = fileURLToPath(new URL('../daemons/node-daemon.js', import.meta.url));
const SIZES = [2, 4, 8, 16, 32];
/** Daemons started at once: these machines have 2 cores, and each daemon's start is CPU-bound. */
const START_GROUP = 4;
/** The daemon's defaults, stated here only to print the expected heartbeat rate. */
const HEARTBEAT_MS = 500;
const FAILURE_TIMEOUT_MS = 2000;
const STATS_MS = 1000;
const CONVERGE_TIMEOUT_MS = 30_000;
/** After the full view, heartbeats still carry member lists for a moment; let that pass. */
const SETTLE_MS = 1000;
/** Heartbeat counters are read from two stats lines at least this far apart (daemon clock). */
const STATS_WINDOW_MS = 5000;
const STATS_TIMEOUT_MS = 10_000;
const DETECT_TIMEOUT_MS = 10_000;
const DETECT_TARGET_MS = 2000;

/** One JSON line per N. `null` when the step timed out (the table says which). */
export interface ClusterFigures {
  n: number;
  converge_ms: number | null;
  detect_ms: number | null;
  heartbeat_msgs_per_node_s: number | null;
  heartbeat_bytes_per_node_s: number | null;
}

interface RunResult {
  figures: ClusterFigures;
  convergeFromFirstSpawnMs: number | null;
  startMs: number;
  detectMinMs: number | null;
  detectReasons: string;
  detectedBy: string;
  msgsPerPeer: number | null;
  bytesPerPeer: number | null;
  msgsMinMax: string;
  cpuPercentPerNode: number | null;
  deadLetters: number;
  framesDropped: number;
  downsBeforeKill: number;
  notes: string[];
}

export async function runCluster(): Promise<ClusterFigures[]> {
  const began = performance.now();
  const runId = `bench-${process.pid}-${Date.now().toString(36)}`;
  console.log(`N = ${SIZES.join(', ')} daemons on 127.0.0.1, discovery on loopback (TTL 0), cluster ${runId}-n<N>; defaults: heartbeat ${HEARTBEAT_MS} ms, failure timeout ${FAILURE_TIMEOUT_MS} ms`);
  console.log(`converge = from the LAST daemon's ready line until every daemon has printed peer:up for all N-1 others (also shown: from the first spawn)`);
  console.log(`detect   = from SIGKILL of one daemon until every survivor has printed peer:down for it (max over survivors; min also shown)`);
  console.log(`heartbeat cost = stats counters over ≥${STATS_WINDOW_MS / 1000} s after the view settled, mean over nodes; ÷(N-1) should stay ≈ ${(1000 / HEARTBEAT_MS).toFixed(1)} msgs/peer/s`);
  const results: RunResult[] = [];
  for (const n of SIZES) {
    const result = await runOne(n, `${runId}-n${n}`);
    results.push(result);
    const f = result.figures;
    console.log(
      `  N=${n}: started in ${ms(result.startMs)} ms, converged ${ms(f.converge_ms)} ms after last ready, ` +
        `detect ${ms(f.detect_ms)} ms (${result.detectedBy}), ${num(f.heartbeat_msgs_per_node_s)} hb msgs/node/s` +
        (result.notes.length ? `  [${result.notes.join('; ')}]` : ''),
    );
  }
  printTable(results);
  console.log(`cluster bench wall time ${((performance.now() - began) / 1000).toFixed(1)} s`);
  return results.map((result) => result.figures);
}

async function runOne(n: number, cluster: string): Promise<RunResult> {
  const discoveryPort = String(randomInt(20_000, 60_000));
  const args = (i: number) => [
    '--host', '127.0.0.1', '--port', '0', '--name', `b${i}`, '--log-level', 'silent', '--stats-ms', String(STATS_MS), '--cpus', '0',
    '--discovery', 'on', '--discovery-port', discoveryPort, '--cluster', cluster,
  ];
  const watchers: DaemonWatcher[] = [];
  const notes: string[] = [];
  const firstSpawn = performance.now();
  try {
    // Start in small groups; every daemon is recorded as soon as it is ready, so the finally
    // below stops it even when another one of its group fails to start.
    for (let i = 0; i < n; i += START_GROUP) {
      const group = Array.from({ length: Math.min(START_GROUP, n - i) }, (_, k) => {
        return startReadyChild<DaemonReady>(DAEMON, args(i + k), 20_000).then((daemon) => {
          watchers.push(new DaemonWatcher(daemon));
        });
      });
      const settled = await Promise.allSettled(group);
      const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
      if (failed) throw failed.reason;
    }
    const lastReady = Math.max(...watchers.map((w) => w.readyAt));
    const startMs = lastReady - firstSpawn;

    // Convergence: every daemon has printed peer:up for all N-1 others.
    const fullView = () => watchers.every((w) => watchers.every((other) => other === w || w.upAt.has(other.node)));
    const converged = await until(fullView, lastReady + CONVERGE_TIMEOUT_MS);
    let convergedAt: number | null = null;
    if (converged) {
      convergedAt = Math.max(...watchers.flatMap((w) => watchers.filter((o) => o !== w).map((o) => w.upAt.get(o.node)!)));
    } else {
      const missing = watchers.reduce((sum, w) => sum + watchers.filter((o) => o !== w && !w.upAt.has(o.node)).length, 0);
      notes.push(`NO full view within ${CONVERGE_TIMEOUT_MS / 1000} s: ${missing} of ${n * (n - 1)} peer:up missing`);
    }

    // Heartbeat cost over a window after the view settled.
    await sleep(SETTLE_MS);
    const windowFrom = performance.now();
    const cpuFrom = watchers.map((w) => cpuSeconds(w.daemon.pid));
    const pairs = new Map<DaemonWatcher, [StatsLine, StatsLine]>();
    const pickPairs = () => {
      for (const w of watchers) {
        if (pairs.has(w)) continue;
        const first = w.stats.find((s) => s.seenAt >= windowFrom);
        const second = first && w.stats.find((s) => s.line.at - first.line.at >= STATS_WINDOW_MS);
        if (first && second) pairs.set(w, [first.line, second.line]);
      }
      return pairs.size === watchers.length;
    };
    if (!(await until(pickPairs, performance.now() + STATS_TIMEOUT_MS))) notes.push(`stats lines from only ${pairs.size} of ${n} daemons`);
    const cpuTo = watchers.map((w) => cpuSeconds(w.daemon.pid));
    const cpuWindowS = (performance.now() - windowFrom) / 1000;
    const cpuShares = watchers.flatMap((_, i) => (cpuFrom[i] != null && cpuTo[i] != null ? [(cpuTo[i]! - cpuFrom[i]!) / cpuWindowS] : []));
    const msgRates: number[] = [];
    const byteRates: number[] = [];
    for (const [a, b] of pairs.values()) {
      const seconds = (b.at - a.at) / 1000;
      msgRates.push((b.membership.heartbeatsSent - a.membership.heartbeatsSent) / seconds);
      byteRates.push((b.membership.heartbeatBytesSent - a.membership.heartbeatBytesSent) / seconds);
    }
    const msgs = msgRates.length ? mean(msgRates) : null;
    const bytes = byteRates.length ? mean(byteRates) : null;
    const lastStats = watchers.map((w) => w.stats.at(-1)?.line).filter((s): s is StatsLine => s !== undefined);
    const deadLetters = lastStats.reduce((sum, s) => sum + s.node.deadLetters, 0);
    const framesDropped = lastStats.reduce((sum, s) => sum + s.node.framesDropped, 0);
    const downsBeforeKill = watchers.reduce((sum, w) => sum + new Set(w.downs.map((down) => down.node)).size, 0);
    if (downsBeforeKill > 0) notes.push(`${downsBeforeKill} peer:down before the kill (flapping)`);

    // Detection: SIGKILL the first daemon started; every survivor that saw it up must report it down.
    const victim = watchers[0]!;
    const survivors = watchers.filter((w) => w !== victim && w.upAt.has(victim.node) && !w.firstDown(victim.node));
    const killedAt = performance.now();
    victim.daemon.child.kill('SIGKILL');
    const detected = await until(() => survivors.every((w) => w.firstDown(victim.node)), killedAt + DETECT_TIMEOUT_MS);
    const seen = survivors.map((w) => w.firstDown(victim.node)).filter((down) => down !== undefined);
    const delays = seen.map((d) => d.seenAt - killedAt);
    const reasons = [...new Set(seen.map((d) => d.reason))].join(',') || '-';
    if (!detected) notes.push(`only ${seen.length} of ${survivors.length} survivors reported the kill within ${DETECT_TIMEOUT_MS / 1000} s`);

    return {
      figures: {
        n,
        converge_ms: convergedAt === null ? null : round1(Math.max(0, convergedAt - lastReady)),
        detect_ms: detected && delays.length ? round1(Math.max(...delays)) : null,
        heartbeat_msgs_per_node_s: msgs === null ? null : round2(msgs),
        heartbeat_bytes_per_node_s: bytes === null ? null : Math.round(bytes),
      },
      convergeFromFirstSpawnMs: convergedAt === null ? null : round1(convergedAt - firstSpawn),
      startMs: round1(startMs),
      detectMinMs: delays.length ? round1(Math.min(...delays)) : null,
      detectReasons: reasons,
      detectedBy: `${seen.length}/${survivors.length} survivors, ${reasons}`,
      msgsPerPeer: msgs === null ? null : round2(msgs / (n - 1)),
      bytesPerPeer: bytes === null ? null : Math.round(bytes / (n - 1)),
      cpuPercentPerNode: cpuShares.length ? round1(100 * mean(cpuShares)) : null,
      msgsMinMax: msgRates.length ? `${round2(Math.min(...msgRates))}–${round2(Math.max(...msgRates))}` : '-',
      deadLetters,
      framesDropped,
      downsBeforeKill,
      notes,
    };
  } finally {
    // stop() sends SIGTERM (a clean leave) by each daemon's own handle, then SIGKILL after the grace.
    await Promise.all(
      watchers.map((w) => w.daemon.stop(3000)),
    );
  }
}

function printTable(results: RunResult[]): void {
  const header = [
    'N', 'start ms', 'converge ms', '(from 1st spawn)', 'detect max ms', 'min ms', 'reason',
    'hb msgs/node/s', '÷(N-1)', 'min–max/node', 'hb B/node/s', 'B/peer/s', 'CPU %/daemon', 'dead letters', 'dropped',
  ];
  const rows = results.map((r) => [
    String(r.figures.n), ms(r.startMs), ms(r.figures.converge_ms), ms(r.convergeFromFirstSpawnMs), ms(r.figures.detect_ms),
    ms(r.detectMinMs), r.detectReasons, num(r.figures.heartbeat_msgs_per_node_s), num(r.msgsPerPeer), r.msgsMinMax,
    num(r.figures.heartbeat_bytes_per_node_s), num(r.bytesPerPeer), num(r.cpuPercentPerNode), String(r.deadLetters), String(r.framesDropped),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i]!)).join('  ');
  console.log('');
  console.log(line(header));
  for (const row of rows) console.log(line(row));
  console.log(`CPU %/daemon: mean share of one core per daemon over the heartbeat window (all its work: heartbeats, stats, host sampling), with N daemons sharing ${os.availableParallelism()} cores`);
  console.log(`expected heartbeat msgs per peer per second: ${(1000 / HEARTBEAT_MS).toFixed(1)} (1000 / heartbeat-ms); a constant ÷(N-1) column means each node's cost grows linearly with N, not as N²`);

  const detects = results.map((r) => r.figures.detect_ms).filter((d): d is number => d !== null);
  const worst = detects.length ? Math.max(...detects) : null;
  const allDetected = detects.length === results.length;
  console.log('');
  console.log('failure detection after SIGKILL, beside published defaults:');
  console.log(`  zerocos (this run, worst over N)   ${worst === null ? 'n/a' : `${ms(worst)} ms`}   target ≤ ${DETECT_TARGET_MS} ms: ${allDetected && worst !== null && worst <= DETECT_TARGET_MS ? 'met' : 'NOT met'}`);
  console.log(`  zerocos silent peer (configured)   ${FAILURE_TIMEOUT_MS}–${FAILURE_TIMEOUT_MS + HEARTBEAT_MS * 1.2} ms (failure timeout + one jittered tick; not measured here)`);
  console.log('  Ray                                ~20–55 s');
  console.log('  Erlang (net_ticktime 60 s)         45–75 s');
  console.log('  Moleculer                          30 s');
  console.log('  dispy                              5 × its pulse interval');
  const surprises = results.filter((r) => r.deadLetters > 0 || r.framesDropped > 0 || r.downsBeforeKill > 0 || r.notes.length > 0);
  if (surprises.length) {
    console.log('');
    for (const r of surprises) {
      console.log(`note N=${r.figures.n}: dead letters ${r.deadLetters}, frames dropped ${r.framesDropped}, peer:down before kill ${r.downsBeforeKill}${r.notes.length ? '; ' + r.notes.join('; ') : ''}`);
    }
  }
}



const ms = (x: number | null) => (x === null ? 'TIMEOUT' : x.toFixed(1));
const num = (x: number | null) => (x === null ? 'n/a' : x.toLocaleString('en-US'));
