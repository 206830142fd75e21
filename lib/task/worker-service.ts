/**
 * One kind of work a worker process serves: tasks (TaskExecutor), actors (ActorHost), jobs
 * (JobRunner), MapReduce (MapReduceRunner), stream stages (StageHost), process-group ranks
 * (RankHost). The worker host (lib/host/worker-host.ts) builds each from its runtime, executor
 * and daemon, and registers it; this contract is all it knows of them.
 *
 * A service takes its requests in one of two ways, or both: messages to the worker's own
 * process (`zerocos.worker`), which the host offers to each registered service's `handle` in
 * registration order until one takes it; or a process of its own that it spawns on
 * the worker's node (ranks), or an invoker it sets on the executor (jobs, MapReduce, which also
 * takes its reducers' shares requests as messages).
 */
export interface WorkerService {
  /**
   * Takes a message sent to the worker's process if it is one of this service's requests.
   * @returns true when it took the message (no other service sees it), false to pass it on
   *   (always false for a service that takes none: ranks)
   */
  handle(message: unknown): boolean;
}
