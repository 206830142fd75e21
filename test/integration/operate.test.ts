import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { JobCluster, Node, defaultSecretPath, loadOrCreateSecret, type ClusterStatus, type StopOutcome, type StoredCluster, type JobRecord } from '../../lib/internal.js';
import { startReadyChild, type ReadyChild } from '../support/child.js';
import { allWorkersReady, daemonsWithOwnHome, type DaemonReady } from '../support/daemon.js';
import { eventually, nextLine } from '../support/eventually.js';
import { isAlive } from '../support/session.js';
import { WORKER_PROCESS } from '../../lib/common/service-names.js';

const DAEMON = fileURLToPath(new URL('../../dist/daemons/node-daemon.js', import.meta.url));
const CLI = fileURLToPath(new URL('../../dist/daemons/zerocos.js', import.meta.url));

/** Children run with a home of their own: the daemons and the CLI meet through its default secret file, as a user's would. */
const own = daemonsWithOwnHome<DaemonReady & { metrics?: string }>('zerocos-ops-');

async function startDaemon(name: string, extra: string[] = []): Promise<ReadyChild<DaemonReady & { metrics?: string }>> {
  const daemon = await startReadyChild<DaemonReady & { metrics?: string }>(
    DAEMON,
    ['--port', '0', '--name', name, '--log-level', 'silent', '--discovery', 'off', '--cpus', '1', ...extra],
    30_000,
    own.env,
  );
  own.started.push(daemon);
  // On a loaded host a worker may be late (the ready line lists it without a node id): wait for it.
  await allWorkersReady(daemon);
  return daemon;
}

const seedOf = (daemon: ReadyChild<DaemonReady>) => daemon.ready.endpoint.replace('tcp://', '');

/** Two daemons that see each other: alpha (2 workers), and beta joined through it. */
async function startPair(): Promise<[ReadyChild<DaemonReady>, ReadyChild<DaemonReady>]> {
  const alpha = await startDaemon('alpha', ['--cpus', '2']);
  const beta = await startDaemon('beta', ['--peers', seedOf(alpha)]);
  await nextLine(alpha.lines, (line) => line.event === 'peer:up' && line.node === beta.ready.node, 15_000);
  return [alpha, beta];
}

/** Runs `zerocos ...args` to its end. */
async function zerocos(args: string[], timeoutMs = 30_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: own.env });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(timer);
  return { code, stdout, stderr };
}

async function json<T>(args: string[]): Promise<T> {
  const result = await zerocos([...args, '--json']);
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  return JSON.parse(result.stdout) as T;
}

describe('zerocos status', () => {
  it('shows both daemons with their workers and host facts, as JSON and as a table', async () => {
    const [alpha, beta] = await startPair();
    const status = await json<ClusterStatus>(['status', '--peers', seedOf(alpha)]);

    expect(status.daemons.map((daemon) => daemon.name)).toEqual(['alpha', 'beta']);
    for (const [daemon, ready] of [[status.daemons[0]!, alpha], [status.daemons[1]!, beta]] as const) {
      expect(daemon).toMatchObject({ node: ready.ready.node, endpoint: ready.ready.endpoint, pid: ready.pid });
      expect(daemon.workers.map((worker) => worker.pid).sort()).toEqual(ready.ready.workers.map((worker) => worker.pid).sort());
      expect(daemon.workers.every((worker) => worker.state === 'ready' && worker.tasks?.running === 0)).toBe(true);
      expect(daemon.host!.cpus).toBeGreaterThan(0);
      expect(daemon.host!.memTotalBytes).toBeGreaterThan(0);
      expect(daemon.host!.diskTotalBytes).toBeGreaterThan(0);
      expect(daemon.resources.cpu).toBe(ready.ready.workers.length);
      expect(daemon.uptimeMs).toBeGreaterThanOrEqual(0);
      expect(daemon.version).toMatch(/^\d+\.\d+\.\d+/);
    }
    expect(status.daemons[0]!.peers).toContainEqual(expect.objectContaining({ node: beta.ready.node, status: 'up', daemon: true }));
    expect(status.totals).toMatchObject({ daemons: 2, workers: 3, workersReady: 3 });
    expect(status.absent).toEqual([]);

    const table = await zerocos(['status', '--peers', seedOf(beta)]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/│ alpha\s+│ 127\.0\.0\.1:\d+\s+│ up/);
    expect(table.stdout).toMatch(/│ beta\s+│ 127\.0\.0\.1:\d+\s+│ up/);
    expect(table.stdout).toContain('2 daemon(s) up; 3/3 workers ready');
  }, 90_000);

  it('finds the daemons of this host by their discovery beacons with --discovery', async () => {
    // Discovery on, as by default; beacons carry a MAC under this test's own secret, so daemons of other users or tests are not heard.
    const daemon = await startDaemon('beacon', ['--cpus', '0', '--discovery', 'on']);
    const status = await json<ClusterStatus>(['status', '--discovery']);
    expect(status.daemons.map((d) => d.node)).toContain(daemon.ready.node);
  }, 60_000);

  it('still answers when a worker is deep in synchronous code: that worker shows no run counts', async () => {
    const daemon = await startDaemon('busy', ['--cpus', '1']);
    const client = await Node.start({ name: 'burner', secret: loadOrCreateSecret(defaultSecretPath(own.home)) });
    try {
      const worker = daemon.ready.workers[0]!;
      expect(await client.call({ name: WORKER_PROCESS, node: worker.node! }, ['burn', 20_000], { timeoutMs: 15_000 })).toBe('started');
      const status = await json<ClusterStatus>(['status', '--peers', seedOf(daemon)]);
      expect(status.daemons[0]!.workers).toEqual([expect.objectContaining({ pid: worker.pid, state: 'ready', error: expect.stringMatching(/timed out|timeout/i) })]);
      expect(status.daemons[0]!.workers[0]!.tasks).toBeUndefined();
      const table = await zerocos(['status', '--peers', seedOf(daemon)]);
      expect(table.stdout).toContain('busy (no answer)');
    } finally {
      await client.stop();
    }
  }, 60_000);
});

describe('zerocos stop', () => {
  it('with --node stops exactly that daemon, and waits until it is gone', async () => {
    const [alpha, beta] = await startPair();
    const result = await zerocos(['stop', '--node', 'beta', '--peers', seedOf(alpha)]);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toContain(`stopped beta (${beta.ready.node})`);
    expect(await beta.exited).toBe(0);
    await eventually(() => expect(isAlive(beta.ready.workers[0]!.pid)).toBe(false));

    expect(isAlive(alpha.pid)).toBe(true);
    const status = await json<ClusterStatus>(['status', '--peers', seedOf(alpha)]);
    expect(status.daemons.map((daemon) => daemon.name)).toEqual(['alpha']);
    expect(status.absent).toContainEqual(expect.objectContaining({ node: beta.ready.node, status: 'down', reason: 'left' }));
  }, 90_000);

  it('with no --node stops every daemon and their workers', async () => {
    const [alpha, beta] = await startPair();
    const outcomes = await json<StopOutcome[]>(['stop', '--peers', seedOf(beta)]);
    expect(outcomes.map((outcome) => [outcome.name, outcome.stopped]).sort()).toEqual([['alpha', true], ['beta', true]]);
    expect(await alpha.exited).toBe(0);
    expect(await beta.exited).toBe(0);
    for (const worker of [...alpha.ready.workers, ...beta.ready.workers]) await eventually(() => expect(isAlive(worker.pid)).toBe(false));
  }, 90_000);

  it('is refused by a daemon running --insecure, which keeps running', async () => {
    const daemon = await startDaemon('open', ['--insecure', '--cpus', '0']);
    const result = await zerocos(['stop', '--insecure', '--peers', seedOf(daemon)]);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('could not stop open: this daemon runs with no credential');
    expect(isAlive(daemon.pid)).toBe(true);
    expect(daemon.child.exitCode).toBeNull();
  }, 60_000);
});

describe('zerocos jobs', () => {
  it('lists the job clusters the daemons keep, and a cluster\'s jobs with their results', async () => {
    const [alpha, beta] = await startPair();
    const cluster = await JobCluster.create<[number], number>((x: number) => x * 7, {
      peers: [seedOf(alpha), seedOf(beta)],
      secret: loadOrCreateSecret(defaultSecretPath(own.home)),
    });
    try {
      const jobs = [1, 2, 3, 4].map((x) => cluster.submit(x));
      await cluster.wait();
      expect(jobs.map((job) => job.status)).toEqual(['finished', 'finished', 'finished', 'finished']);
      // Workers send their records to the store in batches: wait until all four are there.
      let clusters: StoredCluster[] = [];
      for (const deadline = Date.now() + 15_000; Date.now() < deadline; ) {
        clusters = await json<StoredCluster[]>(['jobs', '--peers', seedOf(alpha)]);
        if (clusters.find((c) => c.cluster === cluster.id)?.jobs === 4) break;
      }
      expect(clusters).toContainEqual(expect.objectContaining({ cluster: cluster.id, jobs: 4, finished: 4, terminated: 0 }));

      const records = await json<JobRecord[]>(['jobs', '--peers', seedOf(alpha), '--cluster', cluster.id]);
      expect(records.map((record) => [record.job, record.args, record.outcome.result])).toEqual([[1, [1], 7], [2, [2], 14], [3, [3], 21], [4, [4], 28]]);
      // The workers that ran them count them as runs of kind 'job'.
      const status = await json<ClusterStatus>(['status', '--peers', seedOf(alpha)]);
      const jobRuns = status.daemons.flatMap((daemon) => daemon.workers).map((worker) => worker.tasks?.byKind['job']?.done ?? 0);
      expect(jobRuns.reduce((a, b) => a + b, 0)).toBe(4);
      expect(status.totals.done).toBeGreaterThanOrEqual(4);

      const table = await zerocos(['jobs', '--peers', seedOf(alpha), '--cluster', cluster.id]);
      expect(table.code).toBe(0);
      expect(table.stdout).toMatch(/│ 4\s+│ finished\s+│ \[4\]\s+│ 28/);
    } finally {
      await cluster.close();
    }
  }, 90_000);
});

describe('zerocos logs', () => {
  it('prints a daemon\'s recent log lines, and with --follow the new ones as they come', async () => {
    const alpha = await startDaemon('alpha', ['--log-level', 'info']);
    const beta = await startDaemon('beta', ['--peers', seedOf(alpha)]);
    await nextLine(alpha.lines, (line) => line.event === 'peer:up' && line.node === beta.ready.node, 15_000);
    await beta.stop();
    await nextLine(alpha.lines, (line) => line.event === 'peer:down' && line.node === beta.ready.node, 15_000);

    const result = await zerocos(['logs', 'alpha', '--peers', seedOf(alpha), '--json']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const lines = result.stdout.trim().split('\n').map((line) => JSON.parse(line) as { msg: string; node?: string; level: number });
    expect(lines.find((line) => line.msg === 'ready')).toMatchObject({ node: alpha.ready.node, level: 30 });
    expect(lines.some((line) => line.msg === 'peer down' && line.node === beta.ready.node)).toBe(true);

    // --follow: a line logged after it started (another peer up) arrives while it runs.
    const child = spawn(process.execPath, [CLI, 'logs', 'alpha', '--peers', seedOf(alpha), '--follow'], { stdio: ['ignore', 'pipe', 'pipe'], env: own.env });
    let followed = '';
    child.stdout.on('data', (chunk: Buffer) => (followed += chunk.toString()));
    try {
      await eventually(() => expect(followed).toContain('[info] ready'), { timeoutMs: 30_000 });
      const gamma = await startDaemon('gamma', ['--peers', seedOf(alpha)]);
      await eventually(() => expect(followed).toContain(`[info] peer up {"node":"${gamma.ready.node}"}`), { timeoutMs: 30_000 });
    } finally {
      child.kill('SIGKILL');
    }
  });
});

describe('zerocos on the command line', () => {
  it('prints one line and exits 1 when no daemon listens at the seed', async () => {
    const port = await freePort();
    const result = await zerocos(['status', '--peers', `127.0.0.1:${port}`]);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr.trimEnd().split('\n')).toEqual([`zerocos: nothing listens at 127.0.0.1:${port} (connection refused): is a node-daemon running there, on that port?`]);
  });

  it('prints one line and exits 1 when the daemon holds another secret', async () => {
    const daemon = await startDaemon('guarded', ['--cpus', '0']);
    const wrong = join(own.home, 'wrong-secret');
    writeFileSync(wrong, 'not the secret\n', { mode: 0o600 });
    const result = await zerocos(['status', '--peers', seedOf(daemon), '--secret-file', wrong, '--timeout-ms', '3000']);
    expect(result.code).toBe(1);
    // The transport names a refused handshake; a daemon that never answered says to check the secret.
    expect(result.stderr.trimEnd().split('\n')).toEqual([expect.stringMatching(/^zerocos: .*(holds another cluster secret|same secret\?\))$/)]);
  }, 60_000);

  it('prints its version, and help with the real defaults', async () => {
    const version = await zerocos(['--version']);
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    const help = (await zerocos(['stop', '--help'])).stdout.replace(/\s+/g, ' ');
    expect(help).toContain('seed daemons to reach the cluster by (default: 127.0.0.1:9740; none with --discovery)');
    expect(help).toContain(`else ${defaultSecretPath(own.home)}`);
    expect(help).toContain('--node <name>');
    const bad = await zerocos(['status', '--peers', 'nowhere']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('is not host:port');
  });
});

/** A TCP port nothing listens on (bound, read back, closed). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}
