/** A helper module imported by task-module.ts: shipped alongside it as a listed dependency. */
export function describeNumber(n) {
    return `${n} squared is ${n * n}`;
}
//# sourceMappingURL=task-module-helper.js.map