import { RemoteError } from '../common/errors.js';
import type { NodeId } from '../wire/address.js';
import type { JobOutcome, JobRecord } from './job-protocol.js';

/**
 * dispy's job states. `created`: submitted, waiting for a worker (here or queued on one);
 * `running`: its worker started it;
 * then one of the final ones: `finished` (it returned), `terminated` (it threw, timed out, or its
 * program was killed), `abandoned` (its node was lost and it is not reentrant, or it could not be
 * placed), `cancelled`.
 */
export type JobStatus = 'created' | 'running' | 'finished' | 'terminated' | 'abandoned' | 'cancelled';

const FINAL: ReadonlySet<JobStatus> = new Set(['finished', 'terminated', 'abandoned', 'cancelled']);

export type { JobOutcome, JobRecord } from './job-protocol.js';

/**
 * One submission to a {@link JobCluster}: its state and, once it ended, its result, output and
 * exception. `await job.value()` gives the result (or throws the job's exception, or why it was
 * abandoned or cancelled); `await job.done()` waits without throwing.
 *
 * Deliberately not a thenable (`await job` gives the job): TypeScript types `for await` over
 * thenables as their awaited value, and an async function returning a job would return its result.
 */
export class Job<R = unknown> {
  status: JobStatus = 'created';
  /** The computation's return value (for a program, its exit code), once finished. */
  result: R | undefined;
  /** The latest provisional result the running job sent (`zerocos.jobs.provisional(value)`). */
  provisional: unknown;
  stdout = '';
  stderr = '';
  /** Why it terminated (a RemoteError with the remote stack), was abandoned or cancelled. */
  exception: Error | undefined;
  /** The daemon whose worker ran it (its last run), and that worker. */
  node: NodeId | undefined;
  worker: NodeId | undefined;
  /** The worker's host name. */
  host: string | undefined;
  /** Epoch ms: when it was submitted, when its (last) run started on the worker, when it ended. */
  readonly submitTime = Date.now();
  startTime: number | undefined;
  endTime: number | undefined;
  /** Files the job sent back (`zerocos.jobs.sendFile(path)`), where they were written here. */
  readonly files: string[] = [];
  private readonly ended: Promise<void>;
  private endNow!: () => void;

  constructor(
    readonly id: number,
    readonly args: unknown[],
  ) {
    this.ended = new Promise<void>((resolve) => (this.endNow = resolve));
  }

  /** True once the job reached a final state. */
  get isDone(): boolean {
    return FINAL.has(this.status);
  }

  /** Resolves once the job reached a final state (read `status` then); never rejects. */
  done(): Promise<void> {
    return this.ended;
  }

  /** Resolves with the result once the job finished; rejects with its exception (or why it was abandoned or cancelled) otherwise. */
  async value(): Promise<R> {
    await this.ended;
    if (this.status === 'finished') return this.result as R;
    throw this.exception ?? new Error(`job ${this.id} ${this.status}`);
  }

  /** @internal Records the end of the job (first call wins). */
  end(status: JobStatus, fields: { outcome?: JobOutcome; exception?: Error } = {}): boolean {
    if (this.isDone) return false;
    const { outcome } = fields;
    if (outcome) {
      this.stdout = outcome.stdout;
      this.stderr = outcome.stderr;
      this.startTime = outcome.startTime;
      this.endTime = outcome.endTime;
      this.host = outcome.host;
      this.worker = outcome.worker;
      if (outcome.exception) this.exception = new RemoteError(outcome.exception);
      else this.result = outcome.result as R;
    }
    if (fields.exception) this.exception = fields.exception;
    this.endTime ??= Date.now();
    this.status = status;
    this.endNow();
    return true;
  }

  /** A job rebuilt from a daemon's record (recovery after the client died). */
  static fromRecord(record: JobRecord): Job {
    const job = new Job(record.job, record.args);
    job.end(record.outcome.exception ? 'terminated' : 'finished', { outcome: record.outcome });
    return job;
  }
}
