/** A node-daemon's ready line (the first JSON line on its stdout). */
export interface DaemonReady {
  node: string;
  endpoint: string;
  pid: number;
  /** `node` is absent for a worker that was late (still starting when the daemon got ready). */
  workers: { index: number; pid: number; node?: string }[];
}
