import { InvalidArgumentError } from '../common/errors.js';
import type { TaskRuntime } from './runtime.js';

/**
 * The task runtime of this process, as `remote()`, `get()`, `put()`... use it: set by `init()`
 * in a client and by the worker script in workers (Ray's global worker). One per process.
 */
let current: TaskRuntime | undefined;

export function currentRuntime(): TaskRuntime {
  if (!current) throw new InvalidArgumentError('zerocos is not initialised in this process: call `await init()` first');
  return current;
}

export function peekRuntime(): TaskRuntime | undefined {
  return current;
}

export function setCurrentRuntime(runtime: TaskRuntime | undefined): void {
  current = runtime;
}
