import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync } from 'node:fs';
import { dirname } from 'node:path';
import { ZerocosError } from '../common/errors.js';

/** A program job ended by a signal (cancelled, or killed from outside). */
export class ProgramKilledError extends ZerocosError {
  override readonly code = 'EPROGRAMKILLED';
  constructor(readonly signal: string) {
    super(`the program was ended by ${signal}`);
  }
}

export interface RunProgramOptions {
  /** Aborting it ends the program: SIGTERM, then SIGKILL after `killGraceMs`. */
  signal?: AbortSignal;
  killGraceMs?: number;
  onStdout(chunk: string): void;
  onStderr(chunk: string): void;
}

/**
 * Runs a program as a child process in its own directory and resolves with its exit code. A
 * `.js`/`.mjs`/`.cjs` file runs with this Node; anything else is executed directly (made
 * executable first: it arrived as plain bytes).
 *
 * No orphans: the program leads a process group of its own, and a watchdog (`sh`, one `read`
 * builtin, about 1 MB) holds the read end of a pipe whose only writer is this process. When this
 * process ends in any way, SIGKILL included, the kernel closes that pipe, the watchdog's `read`
 * returns, and it SIGKILLs the whole group: the program and everything it started. Linux's
 * PR_SET_PDEATHSIG would cover only the program itself, not its children, and is not reachable
 * from Node; a subreaper needs a native call too. Cancelling signals the group as well.
 * @throws ProgramKilledError when a signal ended it; the spawn error when it cannot start
 */
export function runProgram(path: string, argv: string[], options: RunProgramOptions): Promise<number> {
  const script = /\.(mjs|cjs|js)$/.test(path);
  if (!script) chmodSync(path, 0o755);
  return new Promise((resolve, reject) => {
    const child = spawn(script ? process.execPath : path, script ? [path, ...argv] : argv, {
      cwd: dirname(path),
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: GROUPS,
    });
    const watchdog = GROUPS && child.pid !== undefined ? startWatchdog(child.pid) : undefined;
    child.stdout!.setEncoding('utf8').on('data', options.onStdout);
    child.stderr!.setEncoding('utf8').on('data', options.onStderr);
    let killer: NodeJS.Timeout | undefined;
    const onAbort = () => {
      signalGroup(child, 'SIGTERM');
      killer = setTimeout(() => signalGroup(child, 'SIGKILL'), options.killGraceMs ?? 1000);
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    child.once('error', (error) => {
      watchdog?.stdin!.end();
      reject(error);
    });
    // 'close', not 'exit': all its output has been read by then.
    child.once('close', (code, signal) => {
      clearTimeout(killer);
      // Its end of the pipe closes: the watchdog ends what the program left running in its group.
      watchdog?.stdin!.end();
      options.signal?.removeEventListener('abort', onAbort);
      if (signal) reject(new ProgramKilledError(signal));
      else resolve(code ?? 0);
    });
  });
}

/** Process groups and `sh` are POSIX; elsewhere the program is a plain child. */
const GROUPS = process.platform !== 'win32';

/** Kills process group `pgid` once this process's end of its stdin pipe closes (see runProgram). */
function startWatchdog(pgid: number): ChildProcess {
  // `read` returns at end of file, i.e. when every writer (this process) has gone, however it went.
  const watchdog = spawn('/bin/sh', ['-c', 'read -r _; kill -s KILL -- "-$1" 2>/dev/null; exit 0', 'zerocos-watchdog', String(pgid)], {
    stdio: ['pipe', 'ignore', 'ignore'],
  });
  watchdog.on('error', () => undefined);
  watchdog.stdin!.on('error', () => undefined);
  // Neither it nor its pipe keeps this process's event loop alive.
  watchdog.unref();
  (watchdog.stdin as unknown as { unref?: () => void }).unref?.();
  return watchdog;
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    if (GROUPS && child.pid !== undefined) process.kill(-child.pid, signal);
    else child.kill(signal);
  } catch {
    // The group is gone already.
  }
}
