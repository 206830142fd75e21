import type { ClusterView } from '../cluster/cluster-view.js';
import type { NodeId } from '../wire/address.js';
import { Scheduler, type Demand, type SchedulerOptions, type WorkerSlot } from './scheduler.js';
import { demandOf, unschedulable, type TaskOptions } from './task-options.js';
import { UnschedulableError } from './task-errors.js';

/** How long a new runtime's view of the cluster is given to settle before a task is declared unschedulable. */
const VIEW_SETTLE_MS = 2000;

/** The scheduler's picture is rebuilt from the cluster view at most this often (it changes with heartbeats). */
const VIEW_REFRESH_MS = 200;

/**
 * Where work can go, for one runtime: its {@link Scheduler} kept up to date from the cluster
 * view, plus long-lived placements (actors, pipeline stages) and the rules for declaring work
 * unschedulable.
 */
export class Placement {
  private readonly scheduler: Scheduler;
  private viewUpdatedAt = 0;
  /** Until when the view may still be incomplete (see isInfeasible). */
  private settlesAt = Date.now() + VIEW_SETTLE_MS;

  constructor(
    private readonly view: ClusterView,
    options: SchedulerOptions | undefined,
    /** With no worker in sight, waiting work gives up after this long. */
    readonly noWorkersTimeoutMs: number,
  ) {
    this.scheduler = new Scheduler(options);
  }

  get workerCount(): number {
    return this.scheduler.workerCount;
  }

  /** Rebuilds the scheduler's picture from the view (at most every 200 ms unless forced). */
  refresh(force = false): void {
    const now = Date.now();
    if (!force && now - this.viewUpdatedAt < VIEW_REFRESH_MS) return;
    this.viewUpdatedAt = now;
    this.scheduler.update(this.view.daemons(), now);
  }

  /** Asks the view for a fresh answer (a worker's view queries its daemon), then rebuilds. */
  async refreshNow(): Promise<void> {
    await this.view.refresh().catch(() => {});
    this.refresh(true);
  }

  pick(demand: Demand): WorkerSlot | undefined {
    return this.scheduler.pick(demand);
  }

  release(slot: WorkerSlot, demand: Demand): void {
    this.scheduler.release(slot, demand);
  }

  /** True when the daemon of a lost worker went silent rather than died (see ClusterView.isSilent). */
  isSilent(daemon: NodeId): boolean {
    return this.view.isSilent?.(daemon) ?? false;
  }

  /** `node` was lost: schedule nothing on it for a while. */
  markDead(node: NodeId): void {
    this.scheduler.markDead(node);
  }

  /**
   * True when no daemon known can ever run `demand`. A young runtime's view may still miss
   * daemons it is learning of (member lists travel with heartbeats), so for its first
   * {@link VIEW_SETTLE_MS} work that fits nowhere waits for the next look instead.
   */
  isInfeasible(demand: Demand): boolean {
    if (this.scheduler.workerCount === 0 || this.scheduler.feasible(demand)) return false;
    return Date.now() >= this.settlesAt;
  }

  /** Says the view is complete now (init saw every daemon it started): no grace for unschedulable work. */
  viewSettled(): void {
    this.settlesAt = 0;
  }

  /** Waits (up to `timeoutMs`) until the view shows at least `count` workers. */
  async waitForWorkers(timeoutMs = 10_000, count = 1): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      await this.refreshNow();
      if (this.scheduler.workerCount >= count) return;
      if (Date.now() >= deadline) throw new UnschedulableError(`${this.scheduler.workerCount} of ${count} workers in the cluster after ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /**
   * A worker for long-lived work (an actor, a pipeline stage): the one with the fewest such
   * placements among those that satisfy `options`, waiting up to `timeoutMs` for room.
   * @throws UnschedulableError when no daemon can ever satisfy it, or none had room in time
   */
  async place(options: TaskOptions, timeoutMs = this.noWorkersTimeoutMs): Promise<WorkerSlot & { demand: Demand }> {
    const demand = demandOf(options);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      this.refresh();
      if (this.scheduler.workerCount > 0 && !this.scheduler.feasible(demand)) throw unschedulable(demand);
      const slot = this.scheduler.place(demand);
      if (slot) return Object.assign(slot, { demand });
      if (Date.now() >= deadline) throw new UnschedulableError(`no worker had room for {cpu: ${demand.cpu}, ...} within ${timeoutMs} ms`);
      await this.refreshNow();
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Undoes {@link place} (the actor or stage ended). */
  unplace(slot: WorkerSlot, demand: Demand): void {
    this.scheduler.unplace(slot, demand);
  }

  /** Every worker the view shows now (as last refreshed). */
  workers(): NodeId[] {
    return this.view.daemons().flatMap((daemon) => daemon.workers);
  }

  /** Every worker in the cluster, after refreshing the view (a worker's view starts empty). */
  async currentWorkers(): Promise<NodeId[]> {
    await this.refreshNow();
    return this.workers();
  }
}
