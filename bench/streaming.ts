/**
 * Streaming benchmark: a pipeline of 3 trivial stages (`x => x`, one instance each) on a local
 * cluster of 2 daemons × 1 worker, fed from this process and read back here.
 *
 * - **Throughput at saturation:** events/s through source → 3 stages → sink, the source writing
 *   as fast as credits allow (median of TRIALS runs of SATURATION_EVENTS).
 * - **Latency under a steady load:** the source offers LOAD_SHARE (50%) of the measured
 *   saturation rate, paced by a 1 ms timer, for LOAD_MS; every event carries its send time
 *   (`performance.timeOrigin + performance.now()` as the source yields it) and the sink takes
 *   the difference on arrival. Source and sink are this one process, so the clocks agree. The
 *   first LOAD_WARMUP_MS are left out. Also printed, not reported: the same at 10% (the latency
 *   floor), and the latency at saturation (mostly queueing: window × hops / rate).
 *
 * Same-run baselines: the same 3 functions as plain calls in this process, behind the same kind
 * of async iteration; one raw StreamWriter → StreamReader between two processes of this node (no
 * wire); one raw stream hop from a worker process to this one over loopback (the pipeline makes
 * four such hops, three of them into worker processes that share the 2 cores with the daemons).
 *
 * The JSON reports `events_per_s` at saturation and `latency_p50_ms`/`latency_p99_ms` under the
 * steady load (`load_events_per_s`).
 */
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { sleep } from './support.js';
import { StreamReader, StreamWriter, get, init, pipeline, remote, shutdown, stage, type Node, type StreamAddress, type StreamWriterStats } from 'zerocos';

/** Installed on workers by the task runtime: the API as shipped code reaches it. */
declare const zerocos: typeof import('zerocos/internal');

const DAEMONS = 2;
const CPUS_PER_DAEMON = 1;
const SATURATION_EVENTS = 200_000;
const TRIALS = 3;
const LOAD_SHARE = 0.5;
const LIGHT_LOAD_SHARE = 0.1;
const LOAD_MS = 3000;
const LOAD_WARMUP_MS = 500;
/** Events through the baselines (the plain calls take more: they are fast). */
const PLAIN_EVENTS = 2_000_000;
const RAW_EVENTS = 500_000;

export interface StreamingFigures {
  /** Through 3 trivial stages at saturation (median of TRIALS). */
  events_per_s: number;
  /** End-to-end latency under a steady offered load of `load_events_per_s` (LOAD_SHARE of saturation). */
  latency_p50_ms: number;
  latency_p99_ms: number;
  load_events_per_s: number;
  saturation_latency_p50_ms: number;
  baseline_plain_calls_per_s: number;
  baseline_local_stream_per_s: number;
  baseline_remote_hop_per_s: number;
  /** events_per_s over the raw hop between a worker and this process. */
  ratio_to_remote_hop: number;
}

/** A run's counts: events, wall time from the first pull to the last arrival, latencies (ms) of the events measured. */
interface Run {
  events: number;
  seconds: number;
  latenciesMs: number[];
  source?: StreamWriterStats;
}

const now = () => performance.timeOrigin + performance.now();

export async function runStreaming(): Promise<StreamingFigures> {
  const began = performance.now();
  const session = await init({ local: { daemons: DAEMONS, cpus: CPUS_PER_DAEMON } });
  console.log(
    `${DAEMONS} daemons × ${CPUS_PER_DAEMON} worker on 127.0.0.1, started in ${fmt(performance.now() - began)} ms; ` +
      `3 stages x => x, 1 instance each, default window; load average ${load()}`,
  );
  try {
    const plain = await plainCalls(PLAIN_EVENTS);
    console.log(`baseline: 3 plain function calls per event in one process (async iteration) ${fmt(rate(plain))} events/s`);
    const local = await localStream(session.client.node, RAW_EVENTS);
    console.log(`baseline: raw StreamWriter → StreamReader, two processes of one node   ${fmt(rate(local))} events/s   latency p50 ${ms(pct(local.latenciesMs, 0.5))} ms`);
    const hop = await remoteHop(session.client.node, RAW_EVENTS);
    console.log(`baseline: raw stream hop, worker process → this process (loopback)    ${fmt(rate(hop))} events/s`);

    // A first, shorter run: the workers compile the stage host and the stage functions.
    await throughRun(SATURATION_EVENTS / 4);
    const runs: Run[] = [];
    for (let i = 0; i < TRIALS; i++) runs.push(await throughRun(SATURATION_EVENTS));
    const rates = runs.map(rate).sort((a, b) => a - b);
    const median = rates[Math.floor(rates.length / 2)]!;
    const middle = runs.find((run) => rate(run) === median)!;
    console.log(
      `pipeline at saturation        ${fmt(median)} events/s (${rates.map(fmt).join(', ')})   ` +
        `latency p50 ${ms(pct(middle.latenciesMs, 0.5))} ms p99 ${ms(pct(middle.latenciesMs, 0.99))} ms (queueing)   ` +
        `source paused ${fmt(middle.source!.creditWaits)}× for credit   ${ratio(median / rate(hop))} the raw hop, ${ratio(median / rate(plain))} plain calls`,
    );

    // The light load only shows the latency floor; the JSON reports LOAD_SHARE.
    const steadyAt = async (share: number) => {
      const offered = Math.round(median * share);
      const steady = await steadyRun(offered, LOAD_MS);
      const [p50, p99] = [pct(steady.latenciesMs, 0.5), pct(steady.latenciesMs, 0.99)];
      console.log(
        `pipeline at ${String(share * 100).padStart(2)}% load (${fmt(offered)}/s offered, ${fmt(rate(steady))}/s done)   latency p50 ${ms(p50)} ms  p99 ${ms(p99)} ms  ` +
          `max ${ms(pct(steady.latenciesMs, 1))} ms over ${fmt(steady.latenciesMs.length)} events; source paused ${fmt(steady.source!.creditWaits)}× for credit`,
      );
      return { offered, p50, p99 };
    };
    await steadyAt(LIGHT_LOAD_SHARE);
    const { offered, p50, p99 } = await steadyAt(LOAD_SHARE);
    console.log(`streaming bench wall time ${((performance.now() - began) / 1000).toFixed(1)} s; load average ${load()}`);
    return {
      events_per_s: Math.round(median),
      latency_p50_ms: round2(p50),
      latency_p99_ms: round2(p99),
      load_events_per_s: offered,
      saturation_latency_p50_ms: round2(pct(middle.latenciesMs, 0.5)),
      baseline_plain_calls_per_s: Math.round(rate(plain)),
      baseline_local_stream_per_s: Math.round(rate(local)),
      baseline_remote_hop_per_s: Math.round(rate(hop)),
      ratio_to_remote_hop: round2(median / rate(hop)),
    };
  } finally {
    await shutdown();
  }
}

// The stages: trivial, so the figures are the pipeline's own cost.
const stages = () => [stage((x: number) => x), stage((x: number) => x), stage((x: number) => x)];

/** `count` send times, each taken as the source pulls it; `started` is set at the first pull. */
async function* stamped(count: number, clock: { started: number }): AsyncGenerator<number> {
  clock.started = performance.now();
  for (let i = 0; i < count; i++) yield now();
}

/** The pipeline at saturation: the source writes as fast as credits allow. */
async function throughRun(count: number): Promise<Run> {
  const clock = { started: 0 };
  const p = pipeline<number>(stamped(count, clock), stages());
  const latenciesMs: number[] = [];
  for await (const sentAt of p) latenciesMs.push(now() - sentAt);
  const seconds = (performance.now() - clock.started) / 1000;
  if (latenciesMs.length !== count) throw new Error(`the pipeline delivered ${latenciesMs.length} of ${count} events`);
  return { events: count, seconds, latenciesMs, source: p.stats().source };
}

/**
 * Events offered at `perSecond` for `durationMs`: every 1 ms timer tick the source yields the
 * events due by then (written in one turn, so they leave as one batch), each stamped as it goes.
 */
async function* paced(perSecond: number, durationMs: number, clock: { started: number }): AsyncGenerator<number> {
  const total = Math.round((perSecond * durationMs) / 1000);
  clock.started = performance.now();
  let sent = 0;
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - clock.started) * perSecond) / 1000));
    for (; sent < due; sent++) yield now();
    await sleep(1);
  }
}

async function steadyRun(perSecond: number, durationMs: number): Promise<Run> {
  const clock = { started: 0 };
  const p = pipeline<number>(paced(perSecond, durationMs, clock), stages());
  const latenciesMs: number[] = [];
  let events = 0;
  for await (const sentAt of p) {
    events++;
    if (sentAt - performance.timeOrigin - clock.started >= LOAD_WARMUP_MS) latenciesMs.push(now() - sentAt);
  }
  return { events, seconds: (performance.now() - clock.started) / 1000, latenciesMs, source: p.stats().source };
}

/** Baseline: the same 3 functions called in this process, behind the same async iteration. */
async function plainCalls(count: number): Promise<Run> {
  const [f, g, h] = stages().map((s) => s.fn as (x: number) => number);
  const clock = { started: 0 };
  async function* chain(): AsyncGenerator<number> {
    for await (const x of stamped(count, clock)) yield h!(g!(f!(x)));
  }
  let events = 0;
  for await (const sentAt of chain()) if (sentAt > 0) events++;
  return { events, seconds: (performance.now() - clock.started) / 1000, latenciesMs: [] };
}

/** Baseline: one stream between two processes of this node (messages passed by reference, no wire). */
async function localStream(node: Node, count: number): Promise<Run> {
  const result = new Promise<Run>((resolve, reject) => {
    node.spawn(async (self) => {
      try {
        const reader = new StreamReader<number>(self);
        const latenciesMs: number[] = [];
        let started = 0;
        node.spawn(async (writerSelf) => {
          const writer = new StreamWriter<number>(writerSelf, reader.address);
          started = performance.now();
          for (let i = 0; i < count; i++) await writer.write(now());
          await writer.end();
        });
        for await (const sentAt of reader) latenciesMs.push(now() - sentAt);
        resolve({ events: latenciesMs.length, seconds: (performance.now() - started) / 1000, latenciesMs });
      } catch (error) {
        reject(error);
      }
    });
  });
  return result;
}

/**
 * Baseline: one raw stream hop over loopback, from a process on a worker (started by a task) to
 * a reader here; timed from the first item's arrival to the end.
 */
async function remoteHop(node: Node, count: number): Promise<Run> {
  const writeFromWorker = remote(async (to: StreamAddress, n: number) => {
    const worker = zerocos.currentRuntime().node;
    return new Promise((resolve, reject) => {
      worker.spawn(async (self) => {
        try {
          const writer = new zerocos.StreamWriter<number>(self, to);
          for (let i = 0; i < n; i++) await writer.write(i);
          await writer.end();
          resolve(writer.stats());
        } catch (error) {
          reject(error);
        }
      });
    });
  });
  return new Promise<Run>((resolve, reject) => {
    node.spawn(async (self) => {
      try {
        const reader = new StreamReader<number>(self);
        const written = get(writeFromWorker.remote(reader.address, count));
        let started = 0;
        let events = 0;
        for await (const i of reader) if (events++ === 0 && i === 0) started = performance.now();
        await written;
        resolve({ events, seconds: (performance.now() - started) / 1000, latenciesMs: [] });
      } catch (error) {
        reject(error);
      }
    });
  });
}

const rate = (run: Run) => run.events / run.seconds;
/** The `q` quantile of `values` (sorted in place). */
function pct(values: number[], q: number): number {
  values.sort((a, b) => a - b);
  return values[Math.min(values.length - 1, Math.floor(q * values.length))] ?? NaN;
}
const fmt = (x: number) => Math.round(x).toLocaleString('en-US');
const ms = (x: number) => (x >= 10 ? x.toFixed(1) : x.toFixed(2));
const round2 = (x: number) => Math.round(x * 100) / 100;
const load = () => loadavg().map((x) => x.toFixed(1)).join(' ');
const ratio = (x: number) => `${x >= 10 ? x.toFixed(0) : x >= 1 ? x.toFixed(1) : x.toFixed(3)}×`;
