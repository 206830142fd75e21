import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The package's process entry points (daemons/*.ts, compiled to dist/daemons/*.js). */
export type EntryPoint = 'node-daemon' | 'worker' | 'zerocos';

/**
 * The compiled script of one of the package's process entry points: the one place that knows
 * where they lie relative to the library. This file is `<base>/lib/common/entry-points.js`:
 * in the built package (dist/, and an installed package, which ships dist/) `<base>` is dist/
 * and the scripts are beside it in `<base>/daemons/`; when this file runs from source (a test
 * runner compiling on the fly) `<base>` is the checkout, whose compiled scripts are in
 * `<base>/dist/daemons/`. Processes are always started from compiled JavaScript.
 */
export function entryPointPath(name: EntryPoint): string {
  const candidates = [new URL(`../../daemons/${name}.js`, import.meta.url), new URL(`../../dist/daemons/${name}.js`, import.meta.url)].map((url) => fileURLToPath(url));
  return candidates.find((path) => existsSync(path)) ?? candidates[0]!;
}
