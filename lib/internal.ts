/**
 * zerocos's internal entry (`zerocos/internal`): the plumbing the package's own process entry
 * points (daemons/), tests and benchmarks compose, apart from the user API in `zerocos`
 * (lib/index.ts). Nothing here is promised to stay as it is between versions.
 */
export { DaemonHost, DaemonStartError } from './host/daemon-host.js';
export type { DaemonHostOptions, DaemonHostOutput } from './host/daemon-host.js';
export { WorkerHost, WORKER_SERVICES, startWorkerNode } from './host/worker-host.js';
export type { WorkerHostOptions } from './host/worker-host.js';
export { WorkerControl, CRASH_EXIT_CODE, MAX_BURN_MS } from './host/worker-control.js';
export type { WorkerContext, WorkerService, WorkerServiceFactory } from './task/worker-service.js';
export { entryPointPath } from './common/entry-points.js';
export type { EntryPoint } from './common/entry-points.js';
export type { WorkerConfig, WorkerNetwork } from './cluster/worker-pool.js';
