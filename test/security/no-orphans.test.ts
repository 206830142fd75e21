import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { JobCluster, type Session } from '../../lib/index.js';
import { eventually } from '../support/eventually.js';
import { childPids, isAlive, startSession, stopSession } from '../support/session.js';

/** Reads `path` once it holds `count` whitespace-separated pids. */
const pidsIn = (path: string, count: number) =>
  eventually(() => {
    const pids = existsSync(path) ? readFileSync(path, 'utf8').split(/\s+/).filter((p) => /^\d+$/.test(p)).map(Number) : [];
    if (pids.length < count) throw new Error(`${path}: ${pids.length} of ${count} pids`);
    return pids;
  }, { timeoutMs: 10_000 });

describe('program jobs', () => {
  let session: Session | undefined;
  let scratch: string | undefined;
  const leftovers: number[] = [];
  afterEach(async () => {
    for (const pid of leftovers.splice(0)) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    await stopSession(session).catch(() => undefined);
    session = undefined;
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  it('die with their worker, children included, when the daemon is SIGKILLed', async () => {
    scratch = mkdtempSync(join(tmpdir(), 'zerocos-sec-orphans-'));
    const program = join(scratch, 'linger.mjs');
    const pidFile = join(scratch, 'pids');
    // The program starts a child of its own, writes both pids, and runs until killed.
    writeFileSync(
      program,
      [
        "import { spawn } from 'node:child_process';",
        "import { appendFileSync } from 'node:fs';",
        "const child = spawn('sleep', ['300'], { stdio: 'ignore' });",
        "appendFileSync(process.argv[2], `${process.pid} ${child.pid} `);",
        'setInterval(() => {}, 1000);',
      ].join('\n'),
    );
    session = await startSession({ local: { daemons: 1, cpus: 1 } });
    const daemon = session.local!.daemons[0]!;
    const workers = childPids(daemon.pid);
    const cluster = await JobCluster.create({ program, argv: [pidFile] });
    cluster.submit();
    const pids = await pidsIn(pidFile, 2);
    leftovers.push(...pids, ...workers);
    expect(pids.every(isAlive)).toBe(true);

    process.kill(daemon.pid, 'SIGKILL');
    // Bounded: the worker sees its IPC channel close and stops; its watchdog then kills the
    // program's process group.
    await eventually(() => expect(pids.filter(isAlive)).toEqual([]), { timeoutMs: 10_000 });
    void cluster.close({ terminate: true, timeoutMs: 1000 }).catch(() => undefined);
  }, 40_000);
});
