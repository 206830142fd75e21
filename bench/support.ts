/** Helpers shared by the benchmarks. */
import { readFileSync } from 'node:fs';

/** CPU time (user + system) a process has used, from /proc (Linux; CLK_TCK = 100); null elsewhere or once it exited. */
export function cpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return null;
  }
}

/** Polls `done` every `pollMs` until it is true (→ true) or `deadline` (performance.now) passes (→ false). */
export async function until(done: () => boolean, deadline: number, pollMs = 10): Promise<boolean> {
  for (;;) {
    if (done()) return true;
    if (performance.now() > deadline) return false;
    await sleep(pollMs);
  }
}

export const sleep = (msDelay: number) => new Promise((resolve) => setTimeout(resolve, msDelay));
export const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
export const mean = (values: number[]) => sum(values) / values.length;
export const round1 = (x: number) => Math.round(x * 10) / 10;
export const round2 = (x: number) => Math.round(x * 100) / 100;
