import { Fifo } from '../common/fifo.js';

/** Calls sharing one timeout length: their deadlines come in the order the calls were made. */
interface Lane {
  readonly timeoutMs: number;
  queue: Fifo<{ ref: number; at: number }>;
  /** Calls in the queue not yet ended (the rest are skipped when their deadline comes). */
  live: number;
  timer: NodeJS.Timeout | undefined;
}

/** A lane whose queue holds more than this many ended calls (and twice its live ones) is compacted. */
const COMPACT_ABOVE = 1024;

/**
 * The timeouts of pending calls, one timer per timeout length instead of one per call.
 *
 * A per-call setTimeout/clearTimeout costs Node a timer list made and dropped for every call
 * made one at a time (the list for a duration is deleted once empty): 1–4% of a call's round
 * trip, measured. Calls with the same timeout expire in the order they were made, so one FIFO
 * per length, with a timer armed for its oldest deadline, is exact; a call that ends early is
 * skipped when its deadline comes (or dropped by compaction).
 */
export class CallDeadlines {
  private readonly lanes = new Map<number, Lane>();

  /** `expire(ref)` is called once the call's deadline has passed, unless it ended first; it must end the call (and so call {@link ended}). */
  constructor(
    private readonly isPending: (ref: number) => boolean,
    private readonly expire: (ref: number) => void,
  ) {}

  /** Starts the clock of call `ref`: expire(ref) in `timeoutMs` unless {@link ended} first. */
  add(ref: number, timeoutMs: number): void {
    let lane = this.lanes.get(timeoutMs);
    if (!lane) {
      lane = { timeoutMs, queue: new Fifo(), live: 0, timer: undefined };
      this.lanes.set(timeoutMs, lane);
    }
    lane.queue.push({ ref, at: performance.now() + timeoutMs });
    lane.live++;
    if (lane.timer === undefined) this.arm(lane, timeoutMs);
    else if (lane.queue.length > COMPACT_ABOVE && lane.queue.length > 2 * lane.live) this.compact(lane);
  }

  /** Call `ref`, made with `timeoutMs`, ended before its deadline. */
  ended(timeoutMs: number): void {
    const lane = this.lanes.get(timeoutMs);
    if (lane) lane.live--;
  }

  /** Stops every timer (the node stopped; its calls were all ended). */
  clear(): void {
    for (const lane of this.lanes.values()) clearTimeout(lane.timer);
    this.lanes.clear();
  }

  private arm(lane: Lane, delayMs: number): void {
    lane.timer = setTimeout(() => this.fire(lane), Math.max(1, Math.ceil(delayMs)));
  }

  private fire(lane: Lane): void {
    lane.timer = undefined;
    const now = performance.now();
    for (let head = lane.queue.at(0); head !== undefined; head = lane.queue.at(0)) {
      // A timer may fire a little before the deadline by the monotonic clock: wait the rest.
      if (head.at > now) return this.arm(lane, head.at - now);
      lane.queue.shift();
      // expire ends the call, which reports back through ended().
      if (this.isPending(head.ref)) this.expire(head.ref);
    }
    // Nothing left to time: drop the lane (and its timer) until a call needs it again.
    if (this.lanes.get(lane.timeoutMs) === lane) this.lanes.delete(lane.timeoutMs);
  }

  /** Drops the entries of calls that already ended, keeping the order of the rest. */
  private compact(lane: Lane): void {
    const kept = new Fifo<{ ref: number; at: number }>();
    for (let entry = lane.queue.shift(); entry !== undefined; entry = lane.queue.shift()) if (this.isPending(entry.ref)) kept.push(entry);
    lane.queue = kept;
    lane.live = kept.length;
  }
}
