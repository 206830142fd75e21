/**
 * The well-known names of zerocos's own processes, in one place: every layer that talks to a
 * daemon's or a worker's service finds its name here, instead of importing the module that
 * implements the service (docs/protocol.md describes what each one answers).
 *
 * All of them start with `zerocos.`, a prefix user code should not register names under.
 */

/** The process on a daemon's node that answers questions about the cluster (`['cluster']`) and takes `['kill-worker', node]`. */
export const DAEMON_PROCESS = 'zerocos.daemon';

/** The process on a daemon's node that its workers announce themselves to (`['ready', ...]`). */
export const WORKERS_PROCESS = 'zerocos.workers';

/** The process each worker registers on its own node: tasks, actors, jobs, MapReduce and stages are sent here. */
export const WORKER_PROCESS = 'zerocos.worker';

/** The process each node's membership runs under (heartbeats). */
export const MEMBERSHIP_PROCESS = 'zerocos.membership';

/** The process on every node with a task runtime that serves its objects (see docs/protocol.md §11.3). */
export const OBJECTS_PROCESS = 'zerocos.objects';

/** The process on each daemon that keeps finished jobs for recovery. */
export const JOB_STORE_PROCESS = 'zerocos.jobstore';

/** The name prefix of a job cluster's process on its client: `zerocos.jobs:<cluster id>`. */
export const JOB_CLUSTER_PREFIX = 'zerocos.jobs:';

/** Actor processes are registered under this prefix plus the actor's name (named actors). */
export const ACTOR_NAME_PREFIX = 'zerocos.actor:';

/** Channel processes are registered under this prefix plus the channel's name. */
export const CHANNEL_PREFIX = 'zerocos.channel:';

/** The process each worker registers to take `['rank:new', spawn]` calls (process groups). */
export const RANKS_PROCESS = 'zerocos.ranks';
