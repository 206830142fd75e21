/**
 * The job cluster example's computation, dispy's sample `compute(n)`: it waits n tenths of a
 * second and returns the host it ran on with n. A module rather than an inline function because
 * it imports `node:os` (shipped code may not): the file travels to the workers by its sha256.
 */
import { hostname } from 'node:os';
export async function compute(n) {
    await new Promise((resolve) => setTimeout(resolve, n * 100));
    return [hostname(), n];
}
//# sourceMappingURL=compute.js.map