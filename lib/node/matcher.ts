/**
 * What `receive` selects on: a predicate; a pattern object whose every key must match the
 * message's field of the same name (by `===`, or by calling the pattern's value when it is a
 * function): `{type: 'pong', seq: (n) => n > 3}` matches `{type: 'pong', seq: 4, extra: 1}`;
 * or a string, number or boolean that matches an equal message (`receive('done')`).
 */
export type Matcher = ((message: any) => boolean) | Readonly<Record<string, unknown>> | string | number | boolean;

export type Predicate = (message: unknown) => boolean;

export function compileMatcher(matcher: Matcher | undefined): Predicate | undefined {
  if (matcher === undefined) return undefined;
  if (typeof matcher === 'function') return matcher as Predicate;
  if (typeof matcher !== 'object' || matcher === null) return (message: unknown) => message === matcher;
  const entries = Object.entries(matcher);
  return (message: unknown) => {
    if (typeof message !== 'object' || message === null) return false;
    const record = message as Record<string, unknown>;
    for (const [key, expected] of entries) {
      const actual = record[key];
      if (typeof expected === 'function' ? !(expected as Predicate)(actual) : actual !== expected) return false;
    }
    return true;
  };
}
