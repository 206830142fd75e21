import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobCluster, get, remote, type Session } from '../../lib/index.js';
import {
  DAEMON_PROCESS,
  JOB_CLUSTER_PREFIX,
  JOB_STORE_PROCESS,
  MEMBERSHIP_PROCESS,
  OBJECTS_PROCESS,
  RANKS_PROCESS,
  WORKERS_PROCESS,
  WORKER_PROCESS,
} from '../../lib/common/service-names.js';
import type { DaemonStatus } from '../../lib/cluster/daemon-status.js';
import type { NodeId, RemoteName } from '../../lib/wire/address.js';
import { prng } from '../support/prng.js';
import { startSession, stopSession } from '../support/session.js';

/** Messages per service; half sent, half as calls. */
const PER_SERVICE = 1500;
const SEED = 0x5e41ce;

/**
 * What each service is asked, besides junk: its verbs, so that fuzzed messages reach its parsers
 * rather than stopping at the first field. Left out: what would change the cluster by design
 * (the daemon's `stop` and `kill-worker`, the test hooks).
 */
const VERBS: Record<string, string[]> = {
  [DAEMON_PROCESS]: ['cluster', 'status', 'logs'],
  [WORKERS_PROCESS]: ['ready', 'worker', 'cluster'],
  [MEMBERSHIP_PROCESS]: [],
  [JOB_STORE_PROCESS]: ['record', 'forget', 'recover'],
  [WORKER_PROCESS]: ['run', 'cancel', 'actor:new', 'ping', 'info', 'job:cleanup', 'm'],
  [OBJECTS_PROCESS]: ['resolve', 'fetch', 'file', 'free'],
  [RANKS_PROCESS]: ['rank:new', 'rank:start'],
  // A client's: the reports and start requests its job cluster takes from workers.
  [JOB_CLUSTER_PREFIX]: ['started', 'start', 'provisional', 'file'],
};

const KEYS = ['hb', 'members', 'echo', 'at', 'leaving', 'info', 'kind', 'source', 'hash', 'name', 'cluster', 'job', 'code', 'options', 'owner', 'workers', 'resources', 'maxConcurrency'];

function junk(random: () => number, depth = 0): unknown {
  const pick = Math.floor(random() * (depth > 2 ? 6 : 9));
  switch (pick) {
    case 0: return Math.floor(random() * 2 ** 32) - 2 ** 31;
    case 1: return random() < 0.5 ? random() * 1e12 : -0.5;
    case 2: return ['', 'x', 'source', 'a:000000000001@tcp://127.0.0.1:1', '\u0000\uffff', 'z'.repeat(Math.floor(random() * 300))][Math.floor(random() * 6)];
    case 3: return random() < 0.5;
    case 4: return null;
    case 5: return Number.MAX_SAFE_INTEGER + 2;
    case 6: return Array.from({ length: Math.floor(random() * 5) }, () => junk(random, depth + 1));
    case 7:
    case 8: {
      const object: Record<string, unknown> = {};
      for (let i = Math.floor(random() * 5); i > 0; i--) object[KEYS[Math.floor(random() * KEYS.length)]!] = junk(random, depth + 1);
      return object;
    }
    default: return undefined;
  }
}

function fuzzedMessage(random: () => number, verbs: string[]): unknown {
  const shape = random();
  if (shape < 0.5 && verbs.length > 0) return [verbs[Math.floor(random() * verbs.length)], ...Array.from({ length: Math.floor(random() * 6) }, () => junk(random, 1))];
  if (shape < 0.85) return { hb: random() < 0.5 ? Math.floor(random() * 100) : junk(random, 2), ...(junk(random, 1) as object) };
  return junk(random);
}

/**
 * Issue 16's rule, service by service: a malformed message to any zerocos service of a daemon or
 * a worker gets a typed error (calls) or is dropped, and the service goes on serving. Each
 * service gets 1,500 seeded messages built from its own verbs and field names with junk values
 * (the kernel's framing is fuzzed apart, in fuzz-frames.test.ts). Found this way: a heartbeat
 * whose member list was not an array stopped the membership process.
 */
describe('every service of a daemon and a worker, fed malformed messages', { timeout: 180_000 }, () => {
  let session: Session;
  beforeAll(async () => {
    session = await startSession({ local: { daemons: 2, cpus: 1 } });
  }, 60_000);
  afterAll(async () => {
    await stopSession(session);
  });

  it('answers or drops each one, and every service still serves: no process of a daemon crashed, peers stay up, workers run tasks', async () => {
    const node = session.runtime.node;
    const daemons = session.local!.daemons;
    const worker = daemons[0]!.workers[0]!.node;
    const targets: [string, NodeId][] = [
      ...[DAEMON_PROCESS, WORKERS_PROCESS, MEMBERSHIP_PROCESS, JOB_STORE_PROCESS].map((name): [string, NodeId] => [name, daemons[0]!.node]),
      ...[WORKER_PROCESS, OBJECTS_PROCESS, RANKS_PROCESS].map((name): [string, NodeId] => [name, worker]),
    ];
    const random = prng(SEED);
    const calls: Promise<unknown>[] = [];
    let unencodable = 0;
    for (const [name, at] of targets) {
      const to: RemoteName = { name, node: at };
      for (let i = 0; i < PER_SERVICE; i++) {
        const message = fuzzedMessage(random, VERBS[name]!);
        try {
          if (i % 2 === 0) node.send(to, message);
          else calls.push(node.call(to, message, { timeoutMs: 2000 }).catch((error: unknown) => error));
        } catch {
          unencodable++;
        }
      }
      // A turn between services, so that the sends leave in batches the peer can take.
      await new Promise((resolve) => setImmediate(resolve));
    }
    const answers = await Promise.all(calls);
    const errors = answers.filter((answer): answer is Error & { code?: string } => answer instanceof Error);
    // Every call ended: answered, failed with a typed error, or timed out (a service that drops what it does not understand).
    expect(answers).toHaveLength(calls.length);
    for (const error of errors) expect(typeof error.code === 'string' || error.name === 'TimeoutError').toBe(true);
    console.log(
      `${targets.length} services × ${PER_SERVICE} messages: ${calls.length} calls, ${calls.length - errors.length} answered, ` +
        `${errors.filter((e) => e.name !== 'TimeoutError').length} failed with a typed error, ${errors.filter((e) => e.name === 'TimeoutError').length} unanswered (dropped); ${unencodable} not encodable here`,
    );

    // The daemons: no zerocos process of theirs ended by throwing, and they still see each other.
    for (const daemon of daemons) {
      const status = await node.call<DaemonStatus>({ name: DAEMON_PROCESS, node: daemon.node }, ['status'], { timeoutMs: 10_000 });
      expect(status.stats.node.crashes).toBe(0);
      const others = daemons.filter((d) => d.node !== daemon.node).map((d) => d.node);
      expect(status.peers.filter((peer) => others.includes(peer.node)).map((peer) => peer.status)).toEqual(others.map(() => 'up'));
    }
    // The worker's services: none of its processes crashed, its own answers, its objects process fails a resolve with a typed error.
    expect(await node.call({ name: WORKER_PROCESS, node: worker }, ['info'], { timeoutMs: 10_000 })).toMatchObject({ node: worker, crashes: 0 });
    expect(await node.call({ name: WORKER_PROCESS, node: worker }, ['ping'], { timeoutMs: 10_000 })).toBe('pong');
    await expect(node.call({ name: OBJECTS_PROCESS, node: worker }, ['resolve', 987_654_321], { timeoutMs: 10_000 })).rejects.toMatchObject({ code: 'EOBJECTLOST' });
    await expect(node.call({ name: JOB_STORE_PROCESS, node: daemons[0]!.node }, ['recover', 'no-such-cluster'], { timeoutMs: 10_000 })).resolves.toEqual([]);
    // And tasks still run on both workers.
    const twice = remote((x: number) => x * 2);
    expect(await get(Array.from({ length: 20 }, (_, i) => twice.remote(i)))).toEqual(Array.from({ length: 20 }, (_, i) => i * 2));
  });

  it("keeps a client's job cluster and objects process serving: reports and start requests with junk fields are refused or dropped", async () => {
    const node = session.runtime.node;
    const cluster = await JobCluster.create((n: number) => n + 1);
    try {
      const random = prng(SEED + 1);
      const calls: Promise<unknown>[] = [];
      // Sent from this node itself: it reaches the same handlers (a worker's would, through the codec).
      for (const [name, verbs] of [[JOB_CLUSTER_PREFIX + cluster.id, VERBS[JOB_CLUSTER_PREFIX]!], [OBJECTS_PROCESS, VERBS[OBJECTS_PROCESS]!]] as const) {
        const to: RemoteName = { name, node: node.id };
        for (let i = 0; i < PER_SERVICE; i++) {
          const message = fuzzedMessage(random, verbs);
          if (i % 2 === 0) node.send(to, message);
          else calls.push(node.call(to, message, { timeoutMs: 2000 }).catch((error: unknown) => error));
        }
      }
      await Promise.all(calls);
      expect(node.stats().crashes).toBe(0);
      const jobs = [1, 2, 3].map((n) => cluster.submit(n));
      expect(await Promise.all(jobs.map((job) => job.value()))).toEqual([2, 3, 4]);
      expect(jobs.map((job) => job.status)).toEqual(['finished', 'finished', 'finished']);
    } finally {
      await cluster.close();
    }
  });
});
