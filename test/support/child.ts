import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

/** A child OS process that announced itself with a JSON line `{"ready": ...}` on stdout. */
export interface ReadyChild<T> {
  child: ChildProcess;
  pid: number;
  ready: T;
  /** Every other stdout line that parsed as JSON, in order. */
  lines: unknown[];
  /** When each of `lines` was read (Date.now()), index for index. */
  arrivals: number[];
  /** What it wrote to stderr so far. */
  stderr(): string;
  /** Resolves with the exit code (or signal name) once the child has exited. */
  exited: Promise<number | string>;
  /** Closes stdin and sends SIGTERM (the polite stops), then SIGKILLs after `graceMs`; resolves when it has exited. */
  stop(graceMs?: number): Promise<number | string>;
}

/**
 * Starts `node <script> ...args` and resolves once it prints its ready line. Rejects if the
 * child exits first or stays silent past `timeoutMs` (a bound for a hung child: a daemon that
 * starts in 1 s idle can take 10 s with both cores busy), killing it so nothing is left behind.
 */
export function startReadyChild<T>(script: string, args: string[] = [], timeoutMs = 30_000, env: NodeJS.ProcessEnv = process.env): Promise<ReadyChild<T>> {
  return startReadyProcess<T>(process.execPath, [script, ...args], { label: script, timeoutMs, env });
}

/**
 * Like {@link startReadyChild} for any command (e.g. `ip netns exec NS node script ...`): the
 * command must exec into the process that prints the ready line, so `pid` and the signals of
 * `stop()` reach that process. `label` names it in errors.
 */
export function startReadyProcess<T>(
  command: string,
  args: string[],
  { label = command, timeoutMs = 30_000, env = process.env }: { label?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<ReadyChild<T>> {
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], env });
  const lines: unknown[] = [];
  const arrivals: number[] = [];
  let stderr = '';
  let announced = false;
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${label} printed no ready line within ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${label} exited (${code}) before it was ready\n${stderr}`));
    });
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch {
        return;
      }
      if (!announced && typeof parsed === 'object' && parsed !== null && 'ready' in parsed) {
        announced = true;
        clearTimeout(timer);
        resolve({
          child,
          pid: child.pid!,
          ready: (parsed as { ready: T }).ready,
          lines,
          arrivals,
          stderr: () => stderr,
          exited,
          stop: (graceMs = 2000) => {
            if (child.exitCode === null && child.signalCode === null) {
              child.stdin!.end();
              child.kill('SIGTERM');
              const killer = setTimeout(() => child.kill('SIGKILL'), graceMs);
              void exited.then(() => clearTimeout(killer));
            }
            return exited;
          },
        });
      } else {
        lines.push(parsed);
        arrivals.push(Date.now());
      }
    });
  });
}
