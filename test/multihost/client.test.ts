import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  NO_NETNS,
  allSeeEachOther,
  clientResult,
  hostPort,
  scratchDir,
  secretFile,
  startClient,
  startDaemon,
  startDaemons,
  workerPids,
  type HostDaemon,
} from './support/daemons.js';
import { figure } from './support/figures.js';
import { NetnsLab, type NetnsHost } from './support/netns.js';

/** Worker processes of the daemons on hosts 0, 1 and 2. */
const CPUS = [2, 1, 1];

interface Workload {
  tasks: { count: number; wrong: number; byPid: Record<string, number> };
  actor: { count: number; pid: number };
  jobs: { statuses: Record<string, number>; wrong: number; byPid: Record<string, number> };
  mapReduce: { equal: boolean; distinct: number; words: number };
  /** The client's, then each daemon's: channels open, and those on a connection the peer opened. */
  channels: { open: number; onPeerConnections: number }[];
}

interface Joined {
  joined: boolean;
  elapsedMs: number;
  error?: { name: string; code?: string; message: string };
}

interface Throughput {
  tasks: number;
  rounds: number[];
  tasksPerSecond: number;
}

// Three hosts with a daemon each, and a client program on a fourth host, as a user would run them.
describe.skipIf(NO_NETNS)('a client on its own host, with daemons on three others', { timeout: 90_000 }, () => {
  let lab: NetnsLab;
  let scratch: ReturnType<typeof scratchDir>;
  let secret: string;
  let daemons: HostDaemon[];
  let clientHost: NetnsHost;
  const seeds = () => daemons.map(hostPort);

  /** Runs the client fixture on the client host and resolves with its result. */
  const runClient = async <T>(mode: string, peers: string[], secretPath: string, args: string[] = []): Promise<{ result: T }> => ({
    result: await clientResult<T>(await startClient(lab, clientHost, mode, peers, secretPath, args)),
  });

  beforeAll(async () => {
    scratch = scratchDir();
    secret = secretFile(scratch.dir, 'multihost-client-secret');
    lab = await NetnsLab.create({ hosts: 4 });
    clientHost = lab.hosts[3]!;
    daemons = await startDaemons(lab, secret, CPUS);
  }, 60_000);
  afterAll(async () => {
    await lab?.destroy();
    scratch?.remove();
  });

  it('runs 1,000 tasks, an actor, 100 jobs and a MapReduce word count over every worker of every host, right after init({peers})', async () => {
    // The client is given one seed only: it must learn the other daemons and their workers before init() resolves.
    const { result } = await runClient<Workload>('workload', [seeds()[0]!], secret);
    const workers = workerPids(daemons);
    expect(workers).toHaveLength(CPUS.reduce((a, b) => a + b));

    expect(result.tasks).toMatchObject({ count: 1000, wrong: 0 });
    // Between hosts too, a pair of nodes shares one connection: some channels answer on the
    // connection their peer opened (the first to reach the other opens the pair's only one).
    const onPeer = result.channels.reduce((sum, c) => sum + c.onPeerConnections, 0);
    figure('channels on a connection the peer opened (client and 3 daemons)', onPeer, `of ${result.channels.reduce((sum, c) => sum + c.open, 0)} open`);
    expect(result.channels).toHaveLength(4);
    expect(onPeer).toBeGreaterThan(0);
    // Submitted the moment init() resolved: every worker of every host ran some.
    expect(Object.keys(result.tasks.byPid).map(Number).sort()).toEqual([...workers].sort());

    expect(result.actor.count).toBe(20);
    expect(workers).toContain(result.actor.pid);

    expect(result.jobs.statuses).toEqual({ finished: 100 });
    expect(result.jobs.wrong).toBe(0);
    expect(Object.keys(result.jobs.byPid).map(Number).sort()).toEqual([...workers].sort());

    expect(result.mapReduce.equal).toBe(true);
    expect(result.mapReduce.distinct).toBeGreaterThan(1000);
  });

  it('runs an MPI-style process group over the workers of every host: allreduce, gather, sendrecv, barrier, split, shrink', async () => {
    const workers = workerPids(daemons);
    const size = workers.length;
    const { result } = await runClient<{ ranks: { rank: number; pid: number; sum: number; vector: number[]; ring: number; halfSum: number; shrunk: number[] }[]; pids: number[] }>(
      'group', [seeds()[0]!], secret, [String(size), String(size)],
    );
    const expectedSum = (size * (size + 1)) / 2;
    expect(result.ranks.map((r) => r.rank)).toEqual([...Array(size).keys()]);
    for (const rank of result.ranks) {
      expect(rank.sum).toBe(expectedSum);
      expect(rank.vector).toEqual([(size * (size - 1)) / 2, size]);
      expect(rank.ring).toBe((rank.rank + size - 1) % size);
      const half = [...Array(size).keys()].filter((r) => r % 2 === rank.rank % 2);
      expect(rank.halfSum).toBe(half.reduce((a, b) => a + b, 0));
      expect(rank.shrunk).toEqual([half.indexOf(rank.rank), half.length]);
    }
    expect(result.pids).toEqual(result.ranks.map((r) => r.pid));
    // Spread over the hosts: the ranks ran in workers of more than one daemon.
    const hostsUsed = daemons.filter((daemon) => daemon.ready.workers.some((w) => result.pids.includes(w.pid)));
    expect(hostsUsed.length).toBeGreaterThan(1);
  });

  it('refuses a client with another secret with an authentication error, not a timeout', async () => {
    const wrong = secretFile(scratch.dir, 'not-the-cluster-secret', 'wrong-secret');
    const { result } = await runClient<Joined>('join', seeds(), wrong);
    expect(result.joined).toBe(false);
    expect(result.error?.name).not.toBe('TimeoutError');
    expect(result.error?.code).toBe('EAUTH');
    expect(result.error?.message).toMatch(/secret|auth/i);
    // The init timeout is 15 s: a refused handshake must be reported well before it.
    expect(result.elapsedMs).toBeLessThan(10_000);
  });

  it('tells a client whose seed runs no daemon that no node-daemon answered there', async () => {
    // The client's own host is reachable and runs no daemon: its port is closed.
    const nowhere = `${clientHost.address}:9740`;
    const { result } = await runClient<Joined>('join', [nowhere], secret);
    expect(result.joined).toBe(false);
    expect(result.error).toMatchObject({ name: 'SeedUnreachableError', code: 'ENOSEED' });
    expect(result.error?.message).toContain(`no node-daemon answered at ${nowhere}`);
    expect(result.elapsedMs).toBeLessThan(10_000);
  });

  it('measures tasks/s from the client host against the same client with daemons on its own loopback', async () => {
    const workers = CPUS.reduce((a, b) => a + b);
    const { result: remote } = await runClient<Throughput>('throughput', seeds(), secret, ['2000', String(workers), '3']);
    // The same daemons (same worker counts), on 127.0.0.1 inside the client's own namespace.
    const local: HostDaemon[] = [];
    try {
      local.push(await startDaemon(lab, clientHost, { secretFile: secret, bind: '127.0.0.1', port: 9750, discovery: false, cpus: CPUS[0] }));
      for (const [i, cpus] of CPUS.slice(1).entries()) {
        local.push(await startDaemon(lab, clientHost, { name: `loop${i + 1}`, secretFile: secret, bind: '127.0.0.1', port: 9751 + i, peers: [hostPort(local[0]!)], cpus }));
      }
      await allSeeEachOther(local);
      const { result: loopback } = await runClient<Throughput>('throughput', [hostPort(local[0]!)], secret, ['2000', String(workers), '3']);
      figure(`tasks/s, client on another host, best of ${remote.rounds.join(', ')}`, remote.tasksPerSecond, 'tasks/s');
      figure(`tasks/s, the same client on loopback, best of ${loopback.rounds.join(', ')}`, loopback.tasksPerSecond, 'tasks/s');
      expect(remote.tasks).toBe(6000);
      expect(loopback.tasks).toBe(6000);
    } finally {
      await Promise.all(local.map((daemon) => daemon.stop()));
    }
  });
});
