import { AsyncLocalStorage } from 'node:async_hooks';
import { basename } from 'node:path';
import { readFile } from 'node:fs/promises';
import { InvalidArgumentError } from '../common/errors.js';
import type { NodeId } from '../wire/address.js';
import { formatFileBack, formatProvisional } from './job-protocol.js';

/** What a running job can reach: set by the job runner around each run, on the worker. */
export interface RunningJob {
  cluster: string;
  job: number;
  owner: NodeId;
  /** What the cluster's `setup` returned on this worker (undefined without setup). */
  setup: unknown;
  /** Where the cluster's `depends` files were written on this worker (undefined without them). */
  dependsDir: string | undefined;
  signal: AbortSignal;
  stdout: string[];
  stderr: string[];
  /** Bytes captured so far per stream (output beyond the cap is dropped, with a note). */
  captured: [number, number];
  /** Sends a message to the job's cluster on the client. */
  send(message: unknown): void;
  /** Sends pending (files in flight) that must reach the client before the job's answer. */
  pending: Promise<unknown>[];
}

/** The running job of the current async context, for jobs that await. */
const asyncJob = new AsyncLocalStorage<RunningJob>();

/** The job running synchronously right now (no AsyncLocalStorage: on Node 20 it costs promise hooks on every promise). */
let syncJob: RunningJob | undefined;

/** The job whose code is running now, if any. */
export function currentJob(): RunningJob | undefined {
  return syncJob ?? asyncJob.getStore();
}

/**
 * Runs `fn` as `job`'s code: writes and `zerocos.jobs.*` calls inside it belong to the job.
 * An async function (or `async: true`) runs in an AsyncLocalStorage context, so the job is
 * still known after its awaits; a plain function runs with the job set for its synchronous
 * extent only (output written later, by a promise it returned, is not captured).
 */
export function runInJob<T>(job: RunningJob, fn: () => T, async: boolean): T {
  if (async) return asyncJob.run(job, fn);
  const outer = syncJob;
  syncJob = job;
  try {
    return fn();
  } finally {
    syncJob = outer;
  }
}

/** True for `async function`s and async arrows/methods (by their constructor). */
export function isAsyncFunction(fn: Function): boolean {
  const name = fn.constructor?.name;
  return name === 'AsyncFunction' || name === 'AsyncGeneratorFunction';
}

function current(what: string): RunningJob {
  const job = currentJob();
  if (!job) throw new InvalidArgumentError(`zerocos.jobs.${what}() works only inside a job running on a worker`);
  return job;
}

/**
 * What a job's code can call, as `zerocos.jobs.*` (dispy's `dispy_provisional_result` and
 * `dispy_send_file`, plus the cluster's setup data).
 */
export const jobs = {
  /** Sends an intermediate result to the client; the job runs on (`job.provisional`, a 'provisional' event). */
  provisional(value: unknown): void {
    const job = current('provisional');
    job.send(formatProvisional(job.job, value));
  },

  /** Sends a file back to the client, which writes it into the cluster's `filesDir` (`job.files`). */
  async sendFile(path: string): Promise<void> {
    const job = current('sendFile');
    const sending = readFile(path).then((bytes) => job.send(formatFileBack(job.job, basename(path), bytes)));
    job.pending.push(sending.catch(() => {}));
    await sending;
  },

  /** What the cluster's `setup` returned on this worker (its in-memory data, kept between jobs). */
  setupResult<T = unknown>(): T {
    return current('setupResult').setup as T;
  },

  /** The directory holding the cluster's `depends` files on this worker. */
  dependsDir(): string | undefined {
    return current('dependsDir').dependsDir;
  },

  /** Aborted when the client cancels the job: long async jobs may stop early on it. */
  signal(): AbortSignal {
    return current('signal').signal;
  },
};
