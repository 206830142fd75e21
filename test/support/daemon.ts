/** A node-daemon's ready line (the first JSON line on its stdout). */
export interface DaemonReady {
  node: string;
  endpoint: string;
  pid: number;
  workers: { index: number; pid: number; node: string }[];
}
