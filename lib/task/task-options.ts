import type { DaemonView } from '../cluster/daemon-offer.js';
import { InvalidArgumentError } from '../common/errors.js';
import type { Demand } from './scheduler.js';
import { UnschedulableError } from './task-errors.js';

/** Options of a task, per function (`remote(fn, opts)`) or per call (`f.options(opts).remote()`). */
export interface TaskOptions {
  /** CPUs the task needs; a worker is one CPU, so more reserves several of one daemon's workers. @default 1 */
  numCpus?: number;
  /** Custom resources, matched against what daemons advertise (`--resources gpu=1`). @default {} */
  resources?: Record<string, number>;
  /** Re-runs after the task's worker or node is lost. @default 3 */
  maxRetries?: number;
  /** Also re-run (within `maxRetries`) when the task itself throws. @default false */
  retryExceptions?: boolean;
  /** Fail with TimeoutError when a run takes longer than this (counted from its dispatch); the worker running it is replaced. @default none */
  timeoutMs?: number;
  /** Only daemons for which this is true may run it (node filters); not sent to workers. @default all */
  placement?: (daemon: DaemonView) => boolean;
}

/** The scheduler's view of a task's options, checked. @throws InvalidArgumentError */
export function demandOf(options: TaskOptions): Demand {
  const cpu = options.numCpus ?? 1;
  if (typeof cpu !== 'number' || !(cpu >= 0)) throw new InvalidArgumentError(`numCpus must be a number, 0 or more, not ${String(cpu)}`);
  const resources = options.resources ?? {};
  for (const [name, amount] of Object.entries(resources)) {
    if (typeof amount !== 'number' || !(amount >= 0)) throw new InvalidArgumentError(`resource ${name} must be a number, 0 or more, not ${String(amount)}`);
  }
  if (options.timeoutMs !== undefined && !(options.timeoutMs > 0 && options.timeoutMs <= 2 ** 31 - 1)) {
    throw new InvalidArgumentError(`timeoutMs must be a positive number of milliseconds, not ${String(options.timeoutMs)}`);
  }
  if (options.maxRetries !== undefined && !(Number.isInteger(options.maxRetries) && options.maxRetries >= 0)) {
    throw new InvalidArgumentError(`maxRetries must be a whole number, 0 or more, not ${String(options.maxRetries)}`);
  }
  return options.placement ? { cpu, resources, daemonFilter: options.placement } : { cpu, resources };
}

export function unschedulable(demand: Demand): UnschedulableError {
  const wanted = [`cpu: ${demand.cpu}`, ...Object.entries(demand.resources).map(([name, amount]) => `${name}: ${amount}`)].join(', ');
  const filter = demand.daemonFilter ? ' and passes its node filter' : '';
  return new UnschedulableError(`no daemon in the cluster has {${wanted}}${filter}: the task can never run`);
}
