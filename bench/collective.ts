/**
 * `npm run bench -- collective`: process groups (lib/collective) with 2 and 4 ranks on a local
 * cluster of 2 daemons × 2 workers: ping-pong round trip (comm.send/recv), allreduce of one
 * number and of a 1 MB Float64Array, bcast of 1 KB, barrier; each p50 in µs, and in units of the
 * same run's raw zerocos round trip (a call from this process to a worker's `zerocos.worker`
 * process, ['ping'] → 'pong'), beside a worker_threads floor (a MessagePort echo of a number
 * and of the same 1 MB array, structured-cloned in memory). Then zerocos send/receive and raw
 * zeromq.js round trips over loopback TCP and over ipc sockets (collective-transports.ts): what
 * ipc between ranks on one host would give. Also runs as `npm run bench -- collectives`.
 */
import { Worker } from 'node:worker_threads';
import { group, init, type Comm } from '../lib/index.js';
import { WORKER_PROCESS } from '../lib/common/service-names.js';
import { transportRoundTrips } from './collective-transports.js';

const REPS = 400;
const BIG_REPS = 30;

async function measure(comm: Comm, reps: number, bigReps: number) {
  const p50 = async (fn: () => Promise<unknown>, n: number) => {
    const times: number[] = [];
    for (let i = 0; i < n + 20; i++) {
      await comm.barrier();
      const t = performance.now();
      await fn();
      if (i >= 20) times.push(performance.now() - t);
    }
    times.sort((a, b) => a - b);
    return Math.round(times[times.length >> 1]! * 1000);
  };
  const one = comm.rank === 0 ? 1 : 0;
  const pingpong = await p50(async () => {
    if (comm.rank === 0) {
      await comm.send(1, one, { tag: 1 });
      await comm.recv({ source: 1, tag: 1 });
    } else if (comm.rank === 1) {
      await comm.send(0, await comm.recv({ source: 0, tag: 1 }), { tag: 1 });
    }
  }, reps);
  const allreduce = await p50(() => comm.allreduce(comm.rank, 'sum'), reps);
  const big = new Float64Array(131_072).fill(comm.rank);
  const allreduce1MB = await p50(() => comm.allreduce(big, 'sum'), bigReps);
  const kb = new Uint8Array(1024);
  const bcast1KB = await p50(() => comm.bcast(comm.rank === 0 ? kb : undefined, 0), reps);
  // p50 runs a barrier before each timed call, untimed: this times one barrier on its own.
  const barrier = await p50(() => comm.barrier(), reps);
  return { pingpong, allreduce, allreduce1MB, bcast1KB, barrier };
}

async function threadFloor(): Promise<{ echo: number; echo1MB: number }> {
  const thread = new Worker(`require('node:worker_threads').parentPort.on('message', (m) => require('node:worker_threads').parentPort.postMessage(m));`, { eval: true });
  const p50 = async (message: unknown, n: number) => {
    const times: number[] = [];
    for (let i = 0; i < n + 20; i++) {
      const t = performance.now();
      await new Promise((resolve) => {
        thread.once('message', resolve);
        thread.postMessage(message);
      });
      if (i >= 20) times.push(performance.now() - t);
    }
    times.sort((a, b) => a - b);
    return Math.round(times[times.length >> 1]! * 1000);
  };
  try {
    return { echo: await p50(1, REPS), echo1MB: await p50(new Float64Array(131_072), BIG_REPS) };
  } finally {
    await thread.terminate();
  }
}

export async function runCollective(): Promise<object[]> {
  const session = await init({ local: { daemons: 2, cpus: 2 }, timeoutMs: 30_000 });
  try {
    const worker = session.runtime.workers()[0]!;
    const times: number[] = [];
    for (let i = 0; i < REPS + 50; i++) {
      const t = performance.now();
      await session.client.node.call({ name: WORKER_PROCESS, node: worker }, ['ping']);
      if (i >= 50) times.push(performance.now() - t);
    }
    times.sort((a, b) => a - b);
    const raw = Math.round(times[times.length >> 1]! * 1000);
    const floor = await threadFloor();
    console.log(`raw zerocos round trip (call to a worker) p50 ${raw} µs; worker_threads echo p50 ${floor.echo} µs, of 1 MB ${floor.echo1MB} µs`);
    const rows: object[] = [];
    for (const size of [2, 4]) {
      const g = await group(measure, { size, args: [REPS, BIG_REPS] });
      const [r0] = await g.results();
      const m = r0!;
      const units = (us: number) => (us / raw).toFixed(2);
      console.log(
        `${size} ranks (p50, µs and × raw round trip): ping-pong ${m.pingpong} (${units(m.pingpong)}), allreduce 1 number ${m.allreduce} (${units(m.allreduce)}), ` +
          `allreduce 1 MB Float64Array ${m.allreduce1MB} (${units(m.allreduce1MB)}), bcast 1 KB ${m.bcast1KB} (${units(m.bcast1KB)}), barrier ${m.barrier} (${units(m.barrier)})`,
      );
      rows.push({ ranks: size, rawRoundTripUs: raw, threadEchoUs: floor.echo, threadEcho1MBUs: floor.echo1MB, ...Object.fromEntries(Object.entries(m).map(([k, v]) => [`${k}Us`, v])) });
    }
    const { tcp, ipc } = await transportRoundTrips(REPS);
    console.log(
      `one host, another OS process (p50): zerocos send + receive over tcp ${tcp.zerocosUs} µs, over ipc ${ipc.zerocosUs} µs; ` +
        `raw zeromq.js DEALER/ROUTER echo over tcp ${tcp.rawUs} µs, over ipc ${ipc.rawUs} µs (ranks cannot use ipc yet: workers bind tcp)`,
    );
    rows.push({ transport: 'one host', zerocosTcpUs: tcp.zerocosUs, zerocosIpcUs: ipc.zerocosUs, rawTcpUs: tcp.rawUs, rawIpcUs: ipc.rawUs });
    return rows;
  } finally {
    await session.shutdown();
  }
}
