import { ZerocosError, type ZerocosErrorOptions } from '../common/errors.js';

/** The task was cancelled with `cancel(ref)` before it finished. */
export class TaskCancelledError extends ZerocosError {
  override readonly code = 'ECANCELLED';
}

/** No daemon in the cluster can ever satisfy the task's demand (CPUs and custom resources). */
export class UnschedulableError extends ZerocosError {
  override readonly code = 'EUNSCHEDULABLE';
}

/** The task's worker (or its node) was lost more times than `maxRetries` allows. */
export class WorkerCrashedError extends ZerocosError {
  override readonly code = 'EWORKERCRASHED';
  override readonly retryable = true;
  constructor(message: string, options?: ZerocosErrorOptions) {
    super(message, options);
  }
}

/** A run named its code by a key the worker does not hold (it never got, or dropped, that code): the caller ships the code again. */
export class CodeUnknownError extends ZerocosError {
  override readonly code = 'ECODEUNKNOWN';
  override readonly retryable = true;
}

/** A value is gone: the node holding it was lost, or the ref was freed. */
export class ObjectLostError extends ZerocosError {
  override readonly code = 'EOBJECTLOST';
  override readonly retryable = true;
}
