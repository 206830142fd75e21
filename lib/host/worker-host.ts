/**
 * The composition of a worker process: its node, its task runtime, and the services it serves
 * (see {@link WorkerService}). daemons/worker.ts only reads argv and the IPC configuration,
 * handles signals, and starts one of these.
 *
 * This layer sits above every layer it composes (tasks, actors, jobs, MapReduce, streams,
 * process groups): nothing in lib/ but lib/host imports it.
 */
import { ActorHost } from '../actor/actor-host.js';
import { DaemonQueryView } from '../cluster/cluster-view.js';
import type { WorkerConfig } from '../cluster/worker-pool.js';
import { RankHost } from '../collective/rank-host.js';
import { WORKER_PROCESS, WORKERS_PROCESS } from '../common/service-names.js';
import { JobRunner } from '../jobs/job-runner.js';
import { MapReduceRunner } from '../mapreduce/mr-runner.js';
import { CallMessage } from '../node/messages.js';
import { Node, type NodeOptions } from '../node/node.js';
import { StageHost } from '../stream/stage-host.js';
import { setCurrentRuntime } from '../task/context.js';
import { TaskExecutor } from '../task/executor.js';
import type { ModuleCacheOptions } from '../task/module-cache.js';
import { TaskRuntime } from '../task/runtime.js';
import type { WorkerService } from '../task/worker-service.js';
import type { NodeId } from '../wire/address.js';
import { WorkerControl } from './worker-control.js';

/** What a worker service is built from: the worker's task runtime, its executor, and its daemon. */
export interface WorkerContext {
  runtime: TaskRuntime;
  executor: TaskExecutor;
  /** The node id of the daemon that supervises this worker. */
  daemon: NodeId;
}

/** Builds one service of a worker (see {@link WorkerService}). */
export type WorkerServiceFactory = (context: WorkerContext) => WorkerService;

/**
 * The services of every worker, in the order they are offered a message of the worker's
 * process. The executor comes first: it is the one the other services' invokers run through.
 */
export const WORKER_SERVICES: readonly WorkerServiceFactory[] = [
  ({ executor }) => executor,
  ({ runtime }) => new ActorHost(runtime),
  ({ runtime, executor, daemon }) => new JobRunner(runtime, executor, daemon),
  ({ runtime, executor }) => new MapReduceRunner(runtime, executor),
  ({ runtime }) => new StageHost(runtime),
  ({ runtime }) => new RankHost(runtime),
];

export interface WorkerHostOptions {
  /** The worker's slot in its daemon's pool: its node is named `worker-<index>`. */
  index: number;
  /** The node id of the daemon that supervises this worker. */
  daemon: NodeId;
  /** What the pool sent on the IPC channel: the secret and where to bind. */
  config: WorkerConfig;
  /** Where shipped module bundles are written. */
  moduleCache?: ModuleCacheOptions;
  /** Serve the `['crash']` and `['burn', ms]` test hooks (ZEROCOS_TEST_HOOKS=1). @default false */
  testHooks?: boolean;
  /** Ends this OS process (a forced cancel, the crash hook); the pool replaces the worker. */
  exit(code: number): void;
}

/**
 * A running worker: its node serves `zerocos.worker` (docs/protocol.md), whose messages go to
 * the registered services, and whose `['ping']`, `['info']` and test-hook calls go to
 * {@link WorkerControl}.
 */
export class WorkerHost {
  private readonly services: WorkerService[] = [];

  private constructor(
    readonly node: Node,
    readonly index: number,
    readonly daemon: NodeId,
    readonly context: WorkerContext,
  ) {}

  /**
   * Binds the worker's node (see {@link startWorkerNode}), makes its task runtime the process's
   * current one, builds and registers {@link WORKER_SERVICES} and starts serving.
   * @throws the bind error when the node cannot bind
   */
  static async start(options: WorkerHostOptions): Promise<WorkerHost> {
    const node = await startWorkerNode(options.index, options.config);
    // This worker runs tasks and owns the refs its tasks create; nested tasks ask the daemon
    // where the cluster's workers are (workers are not members: that would be N² heartbeats).
    const runtime = new TaskRuntime(node, new DaemonQueryView(node, options.daemon), options.moduleCache ? { moduleCache: options.moduleCache } : {});
    setCurrentRuntime(runtime);
    const executor = new TaskExecutor(runtime, { exit: options.exit });
    const host = new WorkerHost(node, options.index, options.daemon, { runtime, executor, daemon: options.daemon });
    for (const make of WORKER_SERVICES) host.register(make(host.context));
    host.serve(new WorkerControl(host, { testHooks: options.testHooks ?? false, exit: options.exit }));
    return host;
  }

  /** Adds a service: it is offered the messages of the worker's process after those registered before it. */
  register(service: WorkerService): void {
    this.services.push(service);
  }

  /** What the executor runs, for `['info']`. */
  stats(): ReturnType<TaskExecutor['stats']> {
    return this.context.executor.stats();
  }

  /** Announces this worker to its daemon (`['ready', slot, node id, OS pid]`); the pool counts it ready once taken. */
  async announce(): Promise<void> {
    await this.node.call({ name: WORKERS_PROCESS, node: this.daemon }, ['ready', this.index, this.node.id, process.pid]);
  }

  private serve(control: WorkerControl): void {
    this.node.spawn(
      async (worker) => {
        for await (const message of worker) {
          if (this.services.some((service) => service.handle(message))) continue;
          if (message instanceof CallMessage) await control.handle(message);
        }
      },
      { name: WORKER_PROCESS },
    );
  }
}

/**
 * Starts a worker's node as its configuration says: on its daemon's interface, advertising the
 * daemon's host, on a port from the configured range (the first free one, trying from
 * `range start + index` so that slots rarely contend) or any free port.
 * @throws the bind error when no port of the range is free (`EADDRINUSE`)
 */
export async function startWorkerNode(index: number, config: WorkerConfig, options: Omit<NodeOptions, 'bind' | 'advertise' | 'secret'> = {}): Promise<Node> {
  const network = config.network;
  const base: NodeOptions = {
    name: `worker-${index}`,
    ...options,
    ...(config.secret !== undefined ? { secret: config.secret } : {}),
    ...(typeof config.cluster === 'string' ? { cluster: config.cluster } : {}),
    ...(network?.advertise !== undefined ? { advertise: network.advertise } : {}),
  };
  const host = network?.host ?? '127.0.0.1';
  const hostPart = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  if (!network?.ports) return Node.start({ ...base, bind: `tcp://${hostPart}:*` });
  const [first, last] = network.ports;
  const count = last - first + 1;
  let lastError: unknown;
  for (let i = 0; i < count; i++) {
    const port = first + ((index + i) % count);
    try {
      return await Node.start({ ...base, bind: `tcp://${hostPart}:${port}` });
    } catch (error) {
      if ((error as { code?: string }).code !== 'EADDRINUSE') throw error;
      lastError = error;
    }
  }
  throw lastError;
}
