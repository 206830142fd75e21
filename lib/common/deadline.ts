/**
 * Bounds on waiting, in one place (the hand-written `Promise.race` with a `setTimeout` they
 * replace each left its timer running, or forgot to): the timer is always cleared once the
 * promise settles, so a bound never holds a process open after the wait is over.
 */

/**
 * `promise`, or a rejection with `error` once `ms` have passed first. With `ms` undefined, the
 * promise as it is. `promise` keeps running after a timeout; what it settles with is dropped.
 * @param error made by the caller, so its stack points at the wait, not at the timer
 */
export function withDeadline<T>(promise: Promise<T>, ms: number | undefined, error: Error): Promise<T> {
  if (ms === undefined) return promise;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(error), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/**
 * Waits for `promise`, but at most `ms`: a bound for waits that may give up (a reply handed to
 * ZeroMQ for a caller that may have vanished). A rejection of `promise` within the bound rejects.
 * @returns true when `promise` fulfilled in time, false when the time ran out
 */
export function waitAtMost(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  return Promise.race([promise.then(() => true as const), late]).finally(() => clearTimeout(timer));
}
