import { spawn } from 'node:child_process';
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
 * @throws ProgramKilledError when a signal ended it; the spawn error when it cannot start
 */
export function runProgram(path: string, argv: string[], options: RunProgramOptions): Promise<number> {
  const script = /\.(mjs|cjs|js)$/.test(path);
  if (!script) chmodSync(path, 0o755);
  return new Promise((resolve, reject) => {
    const child = spawn(script ? process.execPath : path, script ? [path, ...argv] : argv, {
      cwd: dirname(path),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.setEncoding('utf8').on('data', options.onStdout);
    child.stderr!.setEncoding('utf8').on('data', options.onStderr);
    let killer: NodeJS.Timeout | undefined;
    const onAbort = () => {
      child.kill('SIGTERM');
      killer = setTimeout(() => child.kill('SIGKILL'), options.killGraceMs ?? 1000);
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    child.once('error', reject);
    // 'close', not 'exit': all its output has been read by then.
    child.once('close', (code, signal) => {
      clearTimeout(killer);
      options.signal?.removeEventListener('abort', onAbort);
      if (signal) reject(new ProgramKilledError(signal));
      else resolve(code ?? 0);
    });
  });
}
