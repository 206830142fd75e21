import type { ErrorInfo } from '../common/errors.js';

/**
 * Why a process ended, in Erlang's vocabulary:
 * - `'normal'`   its function returned;
 * - `'killed'`   it was sent the untrappable `'kill'` signal;
 * - `'shutdown'` its node stopped;
 * - `'noproc'`   (in a down message) it did not exist when the monitor or call was made;
 * - `'nodedown'` (in a down message) its node was lost, so its fate is unknown;
 * - an {@link ErrorInfo} when its function threw (name, message, stack, node, pid);
 * - any other value given to `exit(reason)`.
 */
export type ExitReason = 'normal' | 'killed' | 'shutdown' | 'noproc' | 'nodedown' | ErrorInfo | (string & {}) | unknown;

/** True for the reasons that do not take linked processes down: `'normal'`. */
export function isNormalExit(reason: ExitReason): boolean {
  return reason === 'normal';
}
