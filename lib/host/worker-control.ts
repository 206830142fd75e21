import type { CallMessage } from '../node/messages.js';
import type { Node } from '../node/node.js';
import { WORKER_PROCESS } from '../common/service-names.js';
import { waitAtMost } from '../common/deadline.js';

/** The exit status of the `['crash']` test hook (EX_SOFTWARE). */
export const CRASH_EXIT_CODE = 70;

/** The longest `['burn', ms]` accepted: 10 minutes. */
export const MAX_BURN_MS = 600_000;

/** The longest `['burn']` waits for its 'started' reply to be handed to ZeroMQ (the node's default connect timeout). */
const REPLY_WAIT_MS = 5000;

/** What `['info']` reports of the worker (its WorkerHost). */
export interface WorkerFacts {
  readonly index: number;
  readonly node: Node;
  /** What the worker's executor runs (ExecutorStats). */
  stats(): unknown;
}

export interface WorkerControlOptions {
  /**
   * Serve `['crash']` and `['burn']`: in production any member could otherwise end a worker or
   * hold its CPU for 10 minutes. Tests and benchmarks enable them (ZEROCOS_TEST_HOOKS=1).
   */
  testHooks: boolean;
  /** Ends this OS process. */
  exit(code: number): void;
}

/**
 * The calls to a worker's process that no service takes (docs/protocol.md):
 *
 *   ['ping']   → 'pong'
 *   ['info']   → {pid: OS pid, index: slot, node: node id, tasks: what its executor runs (ExecutorStats)}
 *   ['crash']  → (test hook) no answer: the OS process exits at once with status 70, so the
 *                caller's call fails with NodeDownError.
 *   ['burn', ms] → (test hook) 'started' at once; then, as soon as that reply has been handed
 *                to ZeroMQ (within 5 s: a new connection to the caller must come up first), the
 *                worker runs pure CPU work in ONE synchronous loop for `ms` milliseconds of wall
 *                time (1 ≤ ms ≤ 600000, a whole number; anything else fails the call).
 *                A benchmark and test hook (bench/cluster-busy.ts): the worst case of CPU-bound
 *                user code, with the worker's event loop blocked the whole time, so that its
 *                node answers nothing but ZMTP heartbeats (libzmq's own thread) until it ends.
 *                Calls that arrive meanwhile are answered afterwards, in order.
 */
export class WorkerControl {
  constructor(
    private readonly host: WorkerFacts,
    private readonly options: WorkerControlOptions,
  ) {}

  /** Answers one call; resolves when the next message may be taken (after a burn). */
  async handle(message: CallMessage): Promise<void> {
    const [op] = Array.isArray(message.request) ? (message.request as unknown[]) : [];
    if ((op === 'crash' || op === 'burn') && !this.options.testHooks) {
      message.fail(new Error(`['${op}'] is a test hook: the worker serves it only with ZEROCOS_TEST_HOOKS=1 in its environment`));
      return;
    }
    switch (op) {
      case 'ping':
        message.reply('pong');
        return;
      case 'info':
        // `crashes`: zerocos processes of this worker that ended by throwing (a service that stopped serving).
        message.reply({ pid: process.pid, index: this.host.index, node: this.host.node.id, tasks: this.host.stats(), crashes: this.host.node.stats().crashes });
        return;
      case 'crash':
        this.options.exit(CRASH_EXIT_CODE);
        return;
      case 'burn': {
        const ms = (message.request as unknown[])[1];
        if (typeof ms !== 'number' || !Number.isInteger(ms) || ms < 1 || ms > MAX_BURN_MS) {
          message.fail(new Error(`['burn', ms] needs a whole number of milliseconds from 1 to ${MAX_BURN_MS}, not ${JSON.stringify(ms)}`));
          return;
        }
        // The reply reaches ZeroMQ only while JavaScript runs (on a new connection, once it is
        // up): wait until it has been handed over, at most the node's connect timeout, then block.
        message.reply('started');
        await waitAtMost(this.host.node.drained(message.from), REPLY_WAIT_MS);
        burn(ms);
        return;
      }
      default:
        message.fail(new Error(`${WORKER_PROCESS} does not understand ${JSON.stringify(message.request)}`));
    }
  }
}

/**
 * Pure CPU work for `ms` milliseconds of wall time, in one synchronous loop: nothing else runs
 * in this process meanwhile. The clock is read once per slice of arithmetic.
 */
function burn(ms: number): number {
  const until = performance.now() + ms;
  let x = 0;
  while (performance.now() < until) {
    for (let i = 0; i < 100_000; i++) x = (x * 1_103_515_245 + 12_345) % 2_147_483_648;
  }
  return x;
}
