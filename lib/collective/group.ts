import type { DaemonView } from '../cluster/daemon-offer.js';
import { InvalidArgumentError, NoProcError, NodeDownError, CalleeExitedError, RemoteError, describeReason, errorInfoOf } from '../common/errors.js';
import { currentRuntime } from '../task/context.js';
import { shipFunction } from '../task/remote-function.js';
import type { RemoteArgs } from '../task/remote.js';
import type { TaskRuntime } from '../task/runtime.js';
import type { Demand, WorkerSlot } from '../task/scheduler.js';
import type { Pid } from '../wire/address.js';
import { RankError, RankFailedError } from './collective-errors.js';
import type { Comm } from './comm.js';
import { decodeParts, isHeader, type Header } from './frames.js';
import { MAX_GROUP_SIZE, type RankCreated, type RankSpawn, type RankTable } from './rank-host.js';
import { RANKS_PROCESS } from '../common/service-names.js';

/** Options of {@link group}. */
export interface GroupOptions<A extends unknown[]> {
  /** The number of ranks (`mpirun -n`), 1 to 1024. */
  size: number;
  /** The arguments after `comm` of every rank's `main` (refs are resolved first). @default [] */
  args?: RemoteArgs<A>;
  /** CPUs each rank reserves on its daemon while it runs. @default 0 (ranks share workers, like mpirun --oversubscribe) */
  numCpus?: number;
  /** Custom resources each rank reserves (`{gpu: 1}`). @default {} */
  resources?: Record<string, number>;
  /** Only daemons for which this is true host ranks. @default all */
  placement?: (daemon: DaemonView) => boolean;
}

/** How long creating one rank on its worker may take. */
const CREATE_TIMEOUT_MS = 30_000;

/**
 * A running process group: its ranks' processes and, once they return, their results.
 * Ranks are spread over the cluster's workers, the least loaded first.
 */
export class Group<R> {
  private readonly outcomes: Promise<PromiseSettledResult<R>[]>;

  /** @internal */
  constructor(
    private readonly runtime: TaskRuntime,
    /** Every rank's process, by rank (a test can kill one). */
    readonly ranks: readonly Pid[],
    outcomes: Promise<PromiseSettledResult<R>[]>,
  ) {
    this.outcomes = outcomes;
  }

  /** The number of ranks. */
  get size(): number {
    return this.ranks.length;
  }

  /**
   * What each rank's `main` returned, in rank order, once every rank has ended.
   * @throws the lowest failing rank's error: {@link RankError} (a RemoteError with `rank`) when
   *   its `main` threw, {@link RankFailedError} when it was lost (killed, worker or node lost)
   */
  async results(): Promise<R[]> {
    const outcomes = await this.outcomes;
    const failed = outcomes.find((outcome) => outcome.status === 'rejected');
    if (failed) throw failed.reason;
    return outcomes.map((outcome) => (outcome as PromiseFulfilledResult<R>).value);
  }

  /** Every rank's outcome, in rank order, once every rank has ended (errors as in {@link results}). */
  settled(): Promise<PromiseSettledResult<R>[]> {
    return this.outcomes;
  }

  /** Kills every rank at once; their results reject with RankFailedError (`'killed'`). */
  kill(): void {
    for (const pid of this.ranks) this.runtime.node.kill(pid);
  }
}

/**
 * Starts a process group, as `mpirun -n size`: `size` rank processes spread over the cluster's
 * workers, each running `main(comm, ...args)` with its own {@link Comm} (`comm.rank`,
 * `comm.size`, point-to-point and collectives). `main` is shipped as source, so like a remote
 * function it may use only its parameters, what it declares, standard globals and `zerocos`.
 * Resolves once every rank exists and has been started; collect the results with
 * {@link Group.results}.
 * @throws FreeVariableError for a `main` that is not self-contained; InvalidArgumentError for a
 *   bad size; UnschedulableError when the ranks do not fit
 * @example
 * const g = await group(async (comm) => comm.allreduce(comm.rank, 'sum'), { size: 4 });
 * await g.results(); // [6, 6, 6, 6]
 */
export async function group<A extends unknown[], R>(
  main: (comm: Comm, ...args: A) => R,
  options: GroupOptions<A>,
): Promise<Group<Awaited<R>>> {
  const runtime = currentRuntime();
  const { size } = options;
  if (!Number.isInteger(size) || size < 1 || size > MAX_GROUP_SIZE) throw new InvalidArgumentError(`a group has 1 to ${MAX_GROUP_SIZE} ranks, not ${size}`);
  const code = shipFunction(main);
  const args = await runtime.resolveArgs({ args: (options.args ?? []) as unknown[] });
  const slots: (WorkerSlot & { demand: Demand })[] = [];
  const created: Pid[] = [];
  let table: { ranks: Pid[]; ports: (Pid | null)[][] };
  try {
    const demand = {
      numCpus: options.numCpus ?? 0,
      ...(options.resources ? { resources: options.resources } : {}),
      ...(options.placement ? { placement: options.placement } : {}),
    };
    for (let rank = 0; rank < size; rank++) slots.push(await runtime.placement.place(demand));
    const replies = await Promise.all(
      slots.map(async (slot, rank) => {
        const spawn: RankSpawn = { code, args, rank, size };
        const reply = await runtime.node.call<RankCreated>({ name: RANKS_PROCESS, node: slot.node }, ['rank:new', spawn], { timeoutMs: CREATE_TIMEOUT_MS });
        created.push({ node: slot.node, id: reply.pid });
        return reply;
      }),
    );
    table = {
      ranks: replies.map((reply, rank) => ({ node: slots[rank]!.node, id: reply.pid })),
      ports: replies.map((reply, rank) => reply.ports.map((id) => (id === null ? null : { node: slots[rank]!.node, id }))),
    };
  } catch (error) {
    for (const pid of created) runtime.node.kill(pid);
    for (const slot of slots) runtime.placement.unplace(slot, slot.demand);
    throw error;
  }
  const { ranks, ports } = table;
  // The driver is a process, so that the ranks can monitor it: its end (or its node's) ends them.
  const outcomes = new Promise<PromiseSettledResult<Awaited<R>>[]>((resolve) =>
    runtime.node.spawn(async (self) => {
      const runs = ranks.map((pid, rank) => {
        // Rank `rank` sends to rank d through d's port for `rank`.
        const start: RankTable = { ranks, routes: ranks.map((_, dest) => (dest === rank ? null : ports[dest]![rank]!)) };
        return self
          .call<[Header, Uint8Array[]]>(pid, ['rank:start', start], { timeoutMs: Infinity })
          .then(decodeResult, (error: unknown) => Promise.reject(rankError(rank, error)))
          .finally(() => runtime.placement.unplace(slots[rank]!, slots[rank]!.demand));
      });
      resolve((await Promise.allSettled(runs)) as PromiseSettledResult<Awaited<R>>[]);
    }),
  );
  return new Group<Awaited<R>>(runtime, ranks, outcomes);
}

function decodeResult(reply: [Header, Uint8Array[]]): any {
  if (!Array.isArray(reply) || !isHeader(reply[0]) || !Array.isArray(reply[1])) throw new InvalidArgumentError('malformed rank result');
  return decodeParts(reply[0], reply[1])[0];
}

function rankError(rank: number, error: unknown): Error {
  if (error instanceof CalleeExitedError) return new RankFailedError(rank, describeReason(error.reason));
  if (error instanceof NodeDownError) return new RankFailedError(rank, 'nodedown');
  if (error instanceof NoProcError) return new RankFailedError(rank, 'noproc');
  if (error instanceof RemoteError) return new RankError(rank, errorInfoOf(error));
  return error instanceof Error ? error : new Error(String(error));
}
