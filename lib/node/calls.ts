import {
  AuthenticationError,
  InvalidArgumentError,
  NodeDownError,
  NodeStoppedError,
  NoProcError,
  CalleeExitedError,
  RemoteError,
  TimeoutError,
  describeReason,
  isErrorInfo,
  toErrorInfo,
  type ErrorInfo,
} from '../common/errors.js';
import type { PeerDownReason } from '../transport/transport.js';
import { formatAddress, isReportFrom, type Address, type NodeId, type Pid } from '../wire/address.js';
import type { Envelope, Target } from '../wire/envelope.js';
import { Kind, PAYLOAD_INDEX, ReplyStatus } from '../wire/kinds.js';
import type { ExitReason } from './exit-reason.js';
import type { LocalProcess } from './local-process.js';
import { watcherKey } from './local-process.js';
import type { PeerCountedMap } from './peer-counted-map.js';
import { CallDeadlines } from './call-deadlines.js';
import { CallMessage } from './messages.js';
import { nodeOf, targetOf } from './targets.js';

/** Call timeouts from here up (setTimeout's ceiling, ~24.8 days) mean none; pass Infinity. */
const NO_TIMER_ABOVE_MS = 2 ** 31 - 1;

/** What calls need of the node they run on (the kernel provides it). */
export interface CallsPort {
  readonly id: NodeId;
  /** The node's own pid (id 0): the caller of calls made from outside any process. */
  readonly nodePid: Pid;
  readonly isStopped: boolean;
  /** A reference unique on this node: calls share the monitors' ref space, so a Down names either. */
  newRef(): number;
  resolveLocal(target: Target): LocalProcess | undefined;
  /** Why a request from `node` on `process` is refused (its `maxPerPeerRefs` reached), counted; undefined when it may go on. */
  overPeerLimit(held: PeerCountedMap<{ node: NodeId }>, node: NodeId, process: LocalProcess): ErrorInfo | undefined;
  whereis(name: string): number | undefined;
  sendDown(node: NodeId, watcher: number, ref: number, target: Target, reason: ExitReason): void;
  sendRemote(node: NodeId, envelope: Envelope): boolean;
  sendWithPayload(node: NodeId, envelope: Envelope, slot: number, payload: unknown): boolean;
}

/** A call waiting for its answer on the caller's node. */
interface PendingCall {
  owner: LocalProcess | undefined;
  target: Address;
  /** The node the target lives on: its loss fails the call. */
  node: NodeId;
  resolve(value: unknown): void;
  reject(error: unknown): void;
  /** Its timeout; undefined: none (Infinity). */
  timeoutMs: number | undefined;
}

/**
 * Calls (Erlang's gen_server:call), both sides, and every way one ends: the reply, the target's
 * exit or absence (a Down naming the call's ref), its node's loss, the caller's exit, the
 * timeout, an unencodable request, or this node's stop. The request itself makes the target's
 * node watch the caller (no separate Monitor/Demonitor traffic), so a call is always bounded.
 */
export class Calls {
  /** Calls made here, not yet settled, by ref. */
  private readonly pending = new Map<number, PendingCall>();
  private readonly deadlines = new CallDeadlines(
    (ref) => this.pending.has(ref),
    (ref) => {
      const call = this.pending.get(ref)!;
      if (this.cancel(ref)) call.reject(new TimeoutError(`call to ${formatAddress(call.target)} timed out after ${call.timeoutMs} ms`));
    },
  );

  constructor(private readonly port: CallsPort) {}

  /**
   * A request/response: the target gets a {@link CallMessage}; the promise settles with its
   * reply, or fails at once with NoProcError, CalleeExitedError or NodeDownError instead of
   * waiting out its timeout; a late reply is dropped.
   */
  call(owner: LocalProcess | undefined, to: Address, request: unknown, timeoutMs: number): Promise<unknown> {
    const port = this.port;
    if (port.isStopped) return Promise.reject(new NodeStoppedError(`node ${port.id} is stopped`));
    const ref = port.newRef();
    const node = nodeOf(to, port.id);
    const from: Pid = owner?.pid ?? port.nodePid;
    // Without a timeout (Infinity) the call ends only by its answer or its monitor: no timer.
    const timed = timeoutMs < NO_TIMER_ABOVE_MS;
    return new Promise((resolve, reject) => {
      // The error is made only when the call times out: made up front so that its stack pointed at
      // the caller, it cost ~20 µs a call (the stack capture), and halved the calls a node could
      // make with 100 in flight (6–10k/s against 12–13k/s, both nodes in one process). Its
      // message names the target and the timeout instead.
      this.pending.set(ref, { owner, target: to, node, resolve, reject, timeoutMs: timed ? timeoutMs : undefined });
      if (timed) this.deadlines.add(ref, timeoutMs);
      owner?.watching.add(ref);
      try {
        if (node === port.id) this.deliver(port.id, from, ref, targetOf(to), request);
        else port.sendWithPayload(node, [Kind.Call, targetOf(to), from.id, ref, null], PAYLOAD_INDEX[Kind.Call], request);
      } catch (error) {
        this.take(ref);
        reject(error);
      }
    });
  }

  /**
   * Gives up a call without settling it (its timeout, or its owner exited) and tells the
   * target's node to stop watching for it.
   * @returns false when it had already ended
   */
  cancel(ref: number): boolean {
    const call = this.take(ref);
    if (!call) return false;
    if (call.node === this.port.id) this.port.resolveLocal(targetOf(call.target))?.watchers.delete(watcherKey(this.port.id, ref));
    else if (!this.port.isStopped) this.port.sendRemote(call.node, [Kind.Demonitor, targetOf(call.target), call.owner?.pid.id ?? 0, ref]);
    return true;
  }

  /**
   * The target of call `ref` ended, or never existed (`noproc`), as `fromNode` reports.
   * @returns false when `ref` is no call waiting here, or the report comes from another node
   */
  down(ref: number, reason: ExitReason, fromNode: NodeId): boolean {
    const call = this.pending.get(ref);
    if (!call || !isReportFrom(call.node, fromNode)) return false;
    this.take(ref);
    call.reject(
      reason === 'noproc'
        ? new NoProcError(`no process ${formatAddress(call.target)}`)
        : new CalleeExitedError(`${formatAddress(call.target)} exited before replying (${describeReason(reason)})`, reason),
    );
    return true;
  }

  /** The node `node` was lost: every call waiting on it (made up to `upToRef`) fails at once with NodeDownError (AuthenticationError for `auth`). */
  nodeLost(node: NodeId, lost: PeerDownReason, upToRef = Infinity): void {
    for (const [ref, call] of [...this.pending]) {
      if (call.node !== node || ref > upToRef) continue;
      this.take(ref);
      call.reject(lost === 'auth' ? new AuthenticationError(node) : new NodeDownError(node, lost));
    }
  }

  /** Call `ref`'s request could not be encoded or is too large: the caller gets that error. */
  rejected(ref: number, error: unknown): void {
    this.take(ref)?.reject(error);
  }

  /** This node stopped: every waiting call fails with NodeStoppedError. */
  stop(): void {
    for (const [ref, call] of [...this.pending]) {
      this.take(ref);
      call.reject(new NodeStoppedError(`node ${this.port.id} stopped before ${formatAddress(call.target)} replied`));
    }
    this.deadlines.clear();
  }

  /** Puts a call into the target's mailbox, watched until answered. */
  deliver(callerNode: NodeId, from: Pid, ref: number, target: Target, request: unknown): void {
    if (target === 0) return this.serveNodeCall(callerNode, from, ref, request);
    const process = this.port.resolveLocal(target);
    if (!process) return this.port.sendDown(callerNode, from.id, ref, target, 'noproc');
    const refused = this.port.overPeerLimit(process.watchers, callerNode, process);
    if (refused) return this.sendReply(callerNode, from.id, ref, false, refused);
    const key = watcherKey(callerNode, ref);
    process.watchers.set(key, { node: callerNode, pid: from.id, ref });
    let answered = false;
    const message = new CallMessage(request, from, {
      respond: (ok, value) => {
        if (answered || !process.watchers.delete(key)) return false;
        answered = true;
        try {
          this.sendReply(callerNode, from.id, ref, ok, ok ? value : toErrorInfo(value, this.port.id, process.pid.id));
        } catch (error) {
          // E.g. a binary reply over the limit: the caller gets the error rather than a timeout,
          // and the replying process learns of it too.
          this.sendReply(callerNode, from.id, ref, false, toErrorInfo(error, this.port.id, process.pid.id));
          throw error;
        }
        return true;
      },
    });
    if (process.mailbox.push(message) === 'full') {
      process.watchers.delete(key);
      const error = toErrorInfo(new InvalidArgumentError(`mailbox of ${formatAddress(process.pid)} is full`), this.port.id, process.pid.id);
      this.sendReply(callerNode, from.id, ref, false, { ...error, code: 'EMAILBOXFULL' });
    }
  }

  /** Node-level services on pid 0: `['hello']` → node id, `['whereis', name]` → pid id or null. */
  private serveNodeCall(callerNode: NodeId, from: Pid, ref: number, request: unknown): void {
    if (Array.isArray(request) && request[0] === 'hello') return this.sendReply(callerNode, from.id, ref, true, this.port.id);
    if (Array.isArray(request) && request[0] === 'whereis' && typeof request[1] === 'string') {
      return this.sendReply(callerNode, from.id, ref, true, this.port.whereis(request[1]) ?? null);
    }
    const error = new InvalidArgumentError(`unknown node service request ${describeReason(request)}`);
    this.sendReply(callerNode, from.id, ref, false, toErrorInfo(error, this.port.id, 0));
  }

  sendReply(node: NodeId, to: number, ref: number, ok: boolean, value: unknown): void {
    if (node === this.port.id) return this.settle(this.port.id, ref, ok, value);
    this.port.sendWithPayload(node, [Kind.Reply, to, ref, ok ? ReplyStatus.Ok : ReplyStatus.Error, null], PAYLOAD_INDEX[Kind.Reply], value);
  }

  /** A reply arrived from `fromNode`; a late one, or one from a node the call did not go to, is dropped. */
  settle(fromNode: NodeId, ref: number, ok: boolean, value: unknown): void {
    const call = this.pending.get(ref);
    if (!call || !isReportFrom(call.node, fromNode)) return;
    this.take(ref);
    if (ok) call.resolve(value);
    else call.reject(isErrorInfo(value) ? new RemoteError(value) : new RemoteError(toErrorInfo(value)));
  }

  /** Removes a waiting call (its deadline, its owner's record of it) and returns it. */
  private take(ref: number): PendingCall | undefined {
    const call = this.pending.get(ref);
    if (!call) return undefined;
    this.pending.delete(ref);
    if (call.timeoutMs !== undefined) this.deadlines.ended(call.timeoutMs);
    call.owner?.watching.delete(ref);
    return call;
  }
}
