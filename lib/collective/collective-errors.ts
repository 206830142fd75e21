import { RemoteError, ZerocosError, type ErrorInfo } from '../common/errors.js';

/**
 * An operation needed a rank of the group that is gone: its process ended (`'killed'`, an error,
 * `'normal'` when it returned before its peers were done with it), or its worker or node was
 * lost (`'nodedown'`). Raised on the surviving ranks instead of waiting forever (ULFM's
 * `MPI_ERR_PROC_FAILED`), and by `Group.results()` for a rank that was lost.
 */
export class RankFailedError extends ZerocosError {
  override readonly code = 'ERANKFAILED';
  constructor(
    /** The lost rank. */
    readonly rank: number,
    /** Why it ended, in one line (an exit reason: `'killed'`, `'nodedown'`, `'Error: ...'`). */
    readonly reason: string,
  ) {
    super(`rank ${rank} failed (${reason})`);
  }
}

/** A rank's `main` threw: the original error, rebuilt as a {@link RemoteError}, with the rank. */
export class RankError extends RemoteError {
  constructor(
    /** The rank whose `main` threw. */
    readonly rank: number,
    info: ErrorInfo,
  ) {
    super({ ...info, message: `rank ${rank}: ${info.message}` });
  }
}
