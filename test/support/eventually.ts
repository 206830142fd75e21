/** Resolves once `check` returns without throwing; polls every 10 ms, fails after `timeoutMs`. */
export async function eventually<T>(check: () => T, { timeoutMs = 5000 } = {}): Promise<T> {
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
export function nextLine<T>(lines: unknown[], predicate: (line: any) => boolean, timeoutMs = 5000): Promise<T> {
  return eventually(() => {
    const found = lines.find(predicate);
    if (found === undefined) throw new Error('no matching line yet');
    return found as T;
  }, { timeoutMs });
}
