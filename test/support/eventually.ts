/**
 * How long to wait for an event by default. Only a failure bound (a check that passes returns at
 * once): generous, since on a loaded 2-core machine a process start or a worker replacement that
 * takes a second idle can take ten.
 */
export const EVENT_TIMEOUT_MS = 20_000;

/** Resolves once `check` returns without throwing; polls every 10 ms, fails after `timeoutMs`. */
export async function eventually<T>(check: () => T, { timeoutMs = EVENT_TIMEOUT_MS } = {}): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
}

/** The next JSON line matching `predicate` from a child's parsed stdout lines. */
export function nextLine<T>(lines: unknown[], predicate: (line: any) => boolean, timeoutMs = EVENT_TIMEOUT_MS): Promise<T> {
  return eventually(() => {
    const found = lines.find(predicate);
    if (found === undefined) throw new Error('no matching line yet');
    return found as T;
  }, { timeoutMs });
}
