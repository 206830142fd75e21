import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuthenticationError, Node, NodeDownError, defaultSecretPath, loadOrCreateSecret } from '../../lib/internal.js';
import { startReadyChild, type ReadyChild } from '../support/child.js';
import type { DaemonReady } from '../support/daemon.js';
import { eventually, nextLine } from '../support/eventually.js';
import { WORKER_PROCESS } from '../../lib/common/service-names.js';

const DAEMON = fileURLToPath(new URL('../../dist/daemons/node-daemon.js', import.meta.url));

/** Runs the daemon to completion and returns its exit code and stderr. */
async function runToExit(args: string[]): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [DAEMON, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  // A bound for a hung daemon: with both cores busy even a refusal at start-up can take seconds.
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(timer);
  return { code, stderr };
}

/** Asks the node at `endpoint` for its id from a fresh client node holding `secret` (by default this user's; null: none). */
async function idOfNodeAt(endpoint: string, secret: string | null = loadOrCreateSecret()): Promise<string> {
  const client = await Node.start({ name: 'client', ...(secret !== null ? { secret } : {}), connectTimeoutMs: 2000 });
  try {
    return await client.connect(endpoint);
  } finally {
    await client.stop();
  }
}

describe('node-daemon', () => {
  const started: ReadyChild<DaemonReady>[] = [];
  afterEach(async () => {
    await Promise.all(started.splice(0).map((daemon) => daemon.stop()));
  });

  it('prints one ready line with its endpoint, answers a node, and stops cleanly on SIGTERM', async () => {
    const daemon = await startReadyChild<DaemonReady>(DAEMON, ['--port', '0', '--name', 'd1', '--log-level', 'silent', '--discovery', 'off', '--cpus', '0']);
    started.push(daemon);
    expect(daemon.ready.endpoint).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+$/);
    expect(daemon.ready.pid).toBe(daemon.pid);

    expect(await idOfNodeAt(daemon.ready.endpoint)).toBe(daemon.ready.node);
    daemon.child.kill('SIGTERM');
    expect(await daemon.exited).toBe(0);
  });

  it('exits non-zero with a clear message when its port is in use', async () => {
    const first = await startReadyChild<DaemonReady>(DAEMON, ['--port', '0', '--log-level', 'silent', '--discovery', 'off', '--cpus', '0']);
    started.push(first);
    const port = first.ready.endpoint.split(':').pop()!;
    const second = await runToExit(['--port', port, '--discovery', 'off', '--cpus', '0']);
    expect(second.code).toBe(1);
    expect(second.stderr).toContain(`port ${port} on 127.0.0.1 is already in use`);
  });

  it('supervises its worker processes: a SIGKILLed worker is reported and replaced, and none outlives the daemon', async () => {
    const daemon = await startReadyChild<DaemonReady>(DAEMON, [
      '--port', '0', '--log-level', 'silent', '--discovery', 'off', '--cpus', '2',
    ]);
    started.push(daemon);
    const { workers } = daemon.ready;
    expect(workers.map((w) => w.index).sort()).toEqual([0, 1]);

    const victim = workers[0]!;
    process.kill(victim.pid, 'SIGKILL');
    const exit = await nextLine<{ index: number; signal: string; expected: boolean }>(
      daemon.lines, (l) => l.event === 'worker:exit' && l.pid === victim.pid);
    expect(exit).toMatchObject({ index: victim.index, signal: 'SIGKILL', expected: false });
    const replaced = await nextLine<{ pid: number }>(
      daemon.lines, (l) => l.event === 'worker:ready' && l.index === victim.index && l.pid !== victim.pid);
    expect(replaced.pid).not.toBe(victim.pid);

    // The daemon itself never noticed beyond the report: it still answers.
    expect(await idOfNodeAt(daemon.ready.endpoint)).toBe(daemon.ready.node);

    daemon.child.kill('SIGTERM');
    expect(await daemon.exited).toBe(0);
    // No orphan: every worker pid is gone (allow for the zombie being reaped by init).
    for (const pid of [workers[1]!.pid, replaced.pid]) {
      await eventually(() => expect(() => process.kill(pid, 0)).toThrow());
    }
  });

  it('gets ready with a worker late past --worker-start-timeout-ms, reports it, and serves it once it is ready', async () => {
    // 1 ms: no worker process starts that fast, whatever the load, so the worker is late for sure.
    const daemon = await startReadyChild<DaemonReady>(DAEMON, [
      '--port', '0', '--log-level', 'silent', '--discovery', 'off', '--cpus', '1', '--worker-start-timeout-ms', '1',
    ]);
    started.push(daemon);
    const [worker] = daemon.ready.workers;
    expect(daemon.ready.workers).toHaveLength(1);
    expect(worker).toEqual({ index: 0, pid: expect.any(Number) }); // no node id yet
    expect(await nextLine(daemon.lines, (l) => l.event === 'worker:late')).toEqual({ event: 'worker:late', index: 0, pid: worker!.pid, waitedMs: 1 });
    // The same process joins when it is ready: it was not killed for being slow.
    const ready = await nextLine<{ pid: number; node: string }>(daemon.lines, (l) => l.event === 'worker:ready', 30_000);
    expect(ready.pid).toBe(worker!.pid);
    const client = await Node.start({ name: 'client', secret: loadOrCreateSecret() });
    try {
      expect(await client.call({ name: WORKER_PROCESS, node: ready.node }, ['ping'], { timeoutMs: 10_000 })).toBe('pong');
    } finally {
      await client.stop();
    }
    daemon.child.kill('SIGTERM');
    expect(await daemon.exited).toBe(0);
  });

  it('with no secret given, creates a per-user secret file (mode 600) and refuses nodes without it', async () => {
    const home = mkdtempSync(join(tmpdir(), 'zerocos-home-'));
    try {
      const env: NodeJS.ProcessEnv = { ...process.env, HOME: home };
      delete env['ZEROCOS_SECRET'];
      const daemon = await startReadyChild<DaemonReady>(DAEMON, ['--port', '0', '--log-level', 'silent', '--discovery', 'off', '--cpus', '0'], 30_000, env);
      started.push(daemon);
      const file = defaultSecretPath(home);
      expect(statSync(file).mode & 0o777).toBe(0o600);
      expect(await idOfNodeAt(daemon.ready.endpoint, loadOrCreateSecret(file))).toBe(daemon.ready.node);
      await expect(idOfNodeAt(daemon.ready.endpoint, null)).rejects.toBeInstanceOf(NodeDownError);
      // Another secret is told apart from a lost node: an authentication error, not retried.
      await expect(idOfNodeAt(daemon.ready.endpoint, 'a guess')).rejects.toBeInstanceOf(AuthenticationError);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  it('runs with no credential only with --insecure, and says so on stderr', async () => {
    const daemon = await startReadyChild<DaemonReady>(DAEMON, ['--port', '0', '--discovery', 'off', '--cpus', '0', '--insecure']);
    started.push(daemon);
    expect(await idOfNodeAt(daemon.ready.endpoint, null)).toBe(daemon.ready.node);
    daemon.child.kill('SIGTERM');
    expect(await daemon.exited).toBe(0);
    expect(daemon.stderr()).toContain('WARNING: --insecure');
  });

  it('exits non-zero on a bad flag', async () => {
    const result = await runToExit(['--port', 'eighty']);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('a port is a whole number');
  });
});
