/**
 * A module function for the task tests (test/integration/tasks.test.ts): shipped to workers
 * with `remote({module, export: 'describeAll', depends: [task-module-helper.js]})`. Unlike a
 * self-contained function, it imports another module and uses `process` directly.
 */
import { describeNumber } from './task-module-helper.js';
export function describeAll(values) {
    return { lines: values.map(describeNumber), pid: process.pid };
}
//# sourceMappingURL=task-module.js.map