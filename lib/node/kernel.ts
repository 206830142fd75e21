import { InvalidArgumentError, MessageTooLargeError, NodeStoppedError, PeerLimitError, MailboxClosedError, toErrorInfo, type ErrorInfo } from '../common/errors.js';
import type { PeerCountedMap } from './peer-counted-map.js';
import type { PeerDownReason, Transport } from '../transport/transport.js';
import { formatAddress, isPid, isReportFrom, pidKey, type Address, type NodeId, type Pid } from '../wire/address.js';
import type { Envelope, Target } from '../wire/envelope.js';
import { BLOB_FLAG, Kind, PAYLOAD_INDEX } from '../wire/kinds.js';
import { Calls } from './calls.js';
import type { ExitReason } from './exit-reason.js';
import type { DeadLetter, KernelHooks } from './kernel-hooks.js';
import { LocalProcess, watcherKey } from './local-process.js';
import { DownMessage, ExitMessage, SentMessage } from './messages.js';
import { ProcessContext, type ProcessFunction } from './process-context.js';
import { Registry } from './registry.js';
import { nodeOf, targetOf } from './targets.js';

export type { DeadLetter, KernelHooks } from './kernel-hooks.js';

export interface KernelLimits {
  mailboxCapacity: number;
  /** Monitors plus calls in progress, and links, that one remote node may hold on one local process (each). */
  maxPerPeerRefs: number;
  callTimeoutMs: number;
  maxMessageBytes: number;
}

type ProcessBody = (process: LocalProcess) => unknown;

/** Options the kernel needs to spawn. */
export interface KernelSpawnOptions {
  name?: string;
  trapExit?: boolean;
  mailboxCapacity?: number;
  linkTo?: LocalProcess;
  senders?: boolean;
}

interface WatchBase {
  target: Address;
  /** The node the target lives on: its loss fires the watch. */
  node: NodeId;
}
/** A monitor held by a process, or a listener held by the node (calls are {@link Calls}'). */
type Watch = (WatchBase & { kind: 'monitor'; owner: LocalProcess }) | (WatchBase & { kind: 'listener'; listener: (down: DownMessage) => void });

/**
 * The runtime of one node: processes, mailboxes, names, monitors and links; calls are its
 * {@link Calls}. All state hangs off this instance. Envelopes arriving from other nodes are
 * handled by an Inbound that `Node.start` wires to the transport. Not exported from the package:
 * Inbound, Calls and ProcessContext each see it through a narrow port of their own.
 */
export class Kernel {
  readonly registry = new Registry();
  /** The node's own pid (id 0): the sender of messages sent from outside any process. */
  readonly nodePid: Pid;
  private readonly processes = new Map<number, LocalProcess>();
  private readonly watches = new Map<number, Watch>();
  private nextPid = 0;
  private nextRef = 0;
  /** Calls made from and answered on this node. */
  readonly calls: Calls;
  /** Monitor, link and call requests refused because their node reached `maxPerPeerRefs` on the process. */
  peerLimitRefusals = 0;
  private stopped = false;
  /** The deepest mailbox of the processes that ended (see mailboxHighWater). */
  private endedHighWater = 0;

  constructor(
    readonly id: NodeId,
    private readonly transport: Transport,
    private readonly limits: KernelLimits,
    readonly hooks: KernelHooks,
  ) {
    // Built once: node.send would otherwise allocate it for every message.
    this.nodePid = { node: id, id: 0 };
    this.calls = new Calls(this);
  }

  get processCount(): number {
    return this.processes.size;
  }

  /** The deepest any mailbox of this node has been, ended processes included. Walks the live processes: for status queries. */
  get mailboxHighWater(): number {
    let deepest = this.endedHighWater;
    for (const process of this.processes.values()) if (process.mailbox.highWater > deepest) deepest = process.mailbox.highWater;
    return deepest;
  }

  get isStopped(): boolean {
    return this.stopped;
  }


  /**
   * Why a remote node may not add another watcher or link to `held` (it holds `maxPerPeerRefs`
   * already), as the error to answer with; undefined when it may. A refusal is counted.
   */
  overPeerLimit(held: PeerCountedMap<{ node: NodeId }>, node: NodeId, process: LocalProcess): ErrorInfo | undefined {
    if (node === this.id || held.countFor(node) < this.limits.maxPerPeerRefs) return undefined;
    this.peerLimitRefusals++;
    // No Error object and no stack: a flood of refusals should cost little to answer.
    const message = `${node} holds ${this.limits.maxPerPeerRefs} monitors, calls or links on ${formatAddress(process.pid)}, the bound per peer`;
    return { name: PeerLimitError.name, message, code: 'EPEERLIMIT', nodeId: this.id, pid: process.pid.id };
  }

  /** The newest ref given out: every monitor and call made so far has a ref up to it. */
  get lastRef(): number {
    return this.nextRef;
  }

  /** A reference unique on this node, for a monitor or a call. */
  newRef(): number {
    return ++this.nextRef;
  }

  lookupLocal(id: number): LocalProcess | undefined {
    return this.processes.get(id);
  }

  whereis(name: string): number | undefined {
    return this.registry.whereis(name);
  }

  /** Registers local process `id` as `name`. @throws NameTakenError, InvalidArgumentError */
  register(name: string, id: number): void {
    this.registry.register(name, id);
  }

  /** See {@link Calls.call}. */
  call(owner: LocalProcess | undefined, to: Address, request: unknown, timeoutMs: number): Promise<unknown> {
    return this.calls.call(owner, to, request, timeoutMs);
  }

  // ---- processes -------------------------------------------------------------------------

  /** Spawns a user process function, giving it its own {@link ProcessContext}. */
  spawnFunction(fn: ProcessFunction, options: KernelSpawnOptions): Pid {
    return this.spawn((process) => fn(new ProcessContext(this, process, this.limits.callTimeoutMs)), options);
  }

  spawn(body: ProcessBody, options: KernelSpawnOptions): Pid {
    this.assertRunning();
    const pid: Pid = { node: this.id, id: ++this.nextPid };
    const process = new LocalProcess(pid, options.mailboxCapacity ?? this.limits.mailboxCapacity);
    process.trapExit = options.trapExit ?? false;
    process.withSender = options.senders ?? false;
    if (options.name !== undefined) this.registry.register(options.name, pid.id);
    this.processes.set(pid.id, process);
    if (options.linkTo) this.link(options.linkTo, pid);
    // Start on a later microtask so the caller holds the pid (to register, link, send) first.
    queueMicrotask(() => {
      let result: unknown;
      try {
        result = body(process);
      } catch (error) {
        this.bodyFailed(process, error);
        return;
      }
      Promise.resolve(result).then(
        () => this.exitProcess(process, 'normal'),
        (error: unknown) => this.bodyFailed(process, error),
      );
    });
    return pid;
  }

  private bodyFailed(process: LocalProcess, error: unknown): void {
    // A process unwinding from its own exit or kill has its reason already.
    if (!process.alive) return;
    const reason = toErrorInfo(error, this.id, process.pid.id);
    this.exitProcess(process, reason);
    this.hooks.crash(process.pid, reason);
  }

  /** Ends a process: closes its mailbox, tells its watchers, and signals its links. */
  exitProcess(process: LocalProcess, reason: ExitReason): void {
    if (!process.alive) return;
    process.alive = false;
    process.exitReason = reason;
    this.processes.delete(process.pid.id);
    this.registry.removeId(process.pid.id);
    if (process.mailbox.highWater > this.endedHighWater) this.endedHighWater = process.mailbox.highWater;
    // As in Erlang, messages already in the mailbox were delivered; calls among them are
    // answered by the down signal below.
    process.mailbox.close(new MailboxClosedError(reason));
    for (const ref of [...process.watching]) if (!this.dropWatch(ref, true)) this.calls.cancel(ref);
    process.watching.clear();
    for (const watcher of process.watchers.values()) this.sendDown(watcher.node, watcher.pid, watcher.ref, process.pid.id, reason);
    process.watchers.clear();
    for (const linked of process.links.values()) {
      if (linked.node === this.id) {
        const other = this.processes.get(linked.id);
        if (other) this.exitSignal(other, process.pid, reason, true);
      } else {
        this.sendRemote(linked.node, [Kind.Exit, linked.id, process.pid.id, reason, 1]);
      }
    }
    process.links.clear();
  }

  /**
   * Delivers an exit signal to a local process. Along a link (`linked`) it applies only while
   * the link exists. `'kill'` sent directly cannot be trapped; otherwise a trapping process gets
   * an {@link ExitMessage}, and any other process dies with the same reason unless it is `'normal'`.
   */
  exitSignal(process: LocalProcess, from: Pid, reason: ExitReason, linked: boolean): void {
    if (!process.alive) return;
    if (linked && !process.links.delete(pidKey(from))) return;
    if (!linked && reason === 'kill') this.exitProcess(process, 'killed');
    else if (process.trapExit) process.mailbox.push(new ExitMessage(from, reason), true);
    else if (reason !== 'normal') this.exitProcess(process, reason);
  }

  /** `exit(pid, reason)` from `from` (a process or the node itself). */
  sendExit(from: Pid, to: Pid, reason: ExitReason): void {
    if (to.node === this.id) {
      const target = this.processes.get(to.id);
      if (target) this.exitSignal(target, from, reason, false);
      return;
    }
    this.sendRemote(to.node, [Kind.Exit, to.id, from.id, reason, 0]);
  }

  // ---- send ------------------------------------------------------------------------------

  /**
   * Sends `message` to `to`. Asynchronous and ordered per sender→receiver pair. An undeliverable
   * message becomes a dead letter on this node (at once for local targets, when the remote node
   * answers for remote ones).
   * @returns false when the queue to the target's node is above the high-water mark (the message is still queued)
   * @throws EncodeError, MessageTooLargeError for a remote target
   */
  send(from: Pid, to: Address, message: unknown): boolean {
    const node = nodeOf(to, this.id);
    if (node === this.id) {
      const reason = this.deliverLocal(targetOf(to), message, from);
      if (reason !== undefined) this.hooks.deadLetter({ from, to, reason, message });
      return true;
    }
    return this.sendWithPayload(node, [Kind.Send, targetOf(to), from.id, null], PAYLOAD_INDEX[Kind.Send], message);
  }

  /** Resolves once the queue to the node of `to` has been handed to its socket. */
  drained(to: Address): Promise<void> {
    const node = nodeOf(to, this.id);
    return node === this.id ? Promise.resolve() : this.transport.drained(node);
  }

  deliverLocal(target: Target, message: unknown, from: Pid): DeadLetter['reason'] | undefined {
    const process = this.resolveLocal(target);
    if (process === undefined) return 'noproc';
    const result = process.mailbox.push(process.withSender ? new SentMessage(from, message) : message);
    return result === 'delivered' ? undefined : result === 'full' ? 'mailbox_full' : 'noproc';
  }

  resolveLocal(target: Target): LocalProcess | undefined {
    const id = typeof target === 'number' ? target : this.registry.whereis(target);
    return id === undefined ? undefined : this.processes.get(id);
  }

  sendRemote(node: NodeId, envelope: Envelope): boolean {
    return this.transport.send(node, envelope);
  }

  /**
   * Sends an envelope whose `slot` carries `payload`. A binary payload is flagged to travel as
   * its own frame, never passing through the codec; its size is known now, so it is checked now.
   * @throws MessageTooLargeError for a binary payload over maxMessageBytes
   */
  sendWithPayload(node: NodeId, envelope: Envelope, slot: number, payload: unknown): boolean {
    if (payload instanceof Uint8Array) {
      if (payload.byteLength > this.limits.maxMessageBytes) throw new MessageTooLargeError(payload.byteLength, this.limits.maxMessageBytes);
      (envelope as unknown[])[0] = (envelope[0] as number) | BLOB_FLAG;
    }
    (envelope as unknown[])[slot] = payload;
    return this.sendRemote(node, envelope);
  }

  // ---- monitors and calls ----------------------------------------------------------------

  /** Starts a monitor on `target`; the watch fires once, with the target's exit reason. */
  monitor(watch: { kind: 'monitor'; owner: LocalProcess } | { kind: 'listener'; listener: (down: DownMessage) => void }, target: Address): number {
    this.assertRunning();
    const ref = this.newRef();
    const node = nodeOf(target, this.id);
    this.watches.set(ref, { ...watch, target, node });
    if (watch.kind === 'monitor') watch.owner.watching.add(ref);
    const ownerId = watch.kind === 'monitor' ? watch.owner.pid.id : 0;
    if (node === this.id) {
      const process = this.resolveLocal(targetOf(target));
      if (process) process.watchers.set(watcherKey(this.id, ref), { node: this.id, pid: ownerId, ref });
      else queueMicrotask(() => this.fireWatch(ref, 'noproc', this.id));
    } else {
      this.sendRemote(node, [Kind.Monitor, targetOf(target), ownerId, ref]);
    }
    return ref;
  }

  /** Stops a monitor. @returns false when it had already fired or did not exist */
  demonitor(ref: number): boolean {
    return this.dropWatch(ref, true);
  }

  sendDown(node: NodeId, watcher: number, ref: number, target: Target, reason: ExitReason): void {
    if (node === this.id) this.fireWatch(ref, reason, this.id);
    else this.sendRemote(node, [Kind.Down, watcher, target, ref, reason]);
  }

  /**
   * A watched process ended (or never existed) as `fromNode` reports, or its node was lost
   * (`fromNode` undefined, observed here): tell the watch's owner. A ref that is no monitor may
   * be a call's (the request watches its target the same way).
   */
  fireWatch(ref: number, reason: ExitReason, fromNode: NodeId | undefined): void {
    const watch = this.watches.get(ref);
    if (!watch) {
      if (fromNode !== undefined) this.calls.down(ref, reason, fromNode);
      return;
    }
    if (fromNode !== undefined && !isReportFrom(watch.node, fromNode)) return;
    this.dropWatch(ref, false);
    if (watch.kind === 'monitor') watch.owner.mailbox.push(new DownMessage(ref, watch.target, reason), true);
    else watch.listener(new DownMessage(ref, watch.target, reason));
  }

  /**
   * The node `node` was lost: fail what depended on it, as Erlang does on `nodedown`. With
   * `upToRef`, only the monitors and calls made up to that ref: later ones went out on a new
   * connection. (Links carry no ref: every link to `node` is broken.)
   */
  nodeLost(node: NodeId, reason: PeerDownReason, upToRef = Infinity): void {
    for (const [ref, watch] of [...this.watches]) if (watch.node === node && ref <= upToRef) this.fireWatch(ref, 'nodedown', undefined);
    this.calls.nodeLost(node, reason, upToRef);
    for (const process of [...this.processes.values()]) {
      // The per-node counts spare the walk (and the copy) for processes holding nothing of `node`.
      if (process.links.countFor(node) > 0) {
        for (const linked of [...process.links.values()]) if (linked.node === node) this.exitSignal(process, linked, 'nodedown', true);
      }
      if (process.watchers.countFor(node) > 0) {
        for (const [key, watcher] of process.watchers) if (watcher.node === node) process.watchers.delete(key);
      }
    }
  }

  /** Forgets a watch; with `tellTarget`, also removes it from the target's side. */
  dropWatch(ref: number, tellTarget: boolean): boolean {
    const watch = this.watches.get(ref);
    if (!watch) return false;
    this.watches.delete(ref);
    if (watch.kind === 'monitor') watch.owner.watching.delete(ref);
    if (tellTarget) {
      if (watch.node === this.id) this.resolveLocal(targetOf(watch.target))?.watchers.delete(watcherKey(this.id, ref));
      else if (!this.stopped) {
        const owner = watch.kind === 'listener' ? 0 : watch.owner.pid.id;
        this.sendRemote(watch.node, [Kind.Demonitor, targetOf(watch.target), owner, ref]);
      }
    }
    return true;
  }

  // ---- links -----------------------------------------------------------------------------

  link(process: LocalProcess, other: Pid): void {
    if (!isPid(other)) throw new InvalidArgumentError('link takes a pid');
    if (other.node === this.id && other.id === process.pid.id) return;
    process.links.set(pidKey(other), other);
    if (other.node === this.id) {
      const target = this.processes.get(other.id);
      if (target) target.links.set(pidKey(process.pid), process.pid);
      else queueMicrotask(() => this.exitSignal(process, other, 'noproc', true));
    } else {
      this.sendRemote(other.node, [Kind.Link, other.id, process.pid.id]);
    }
  }

  unlink(process: LocalProcess, other: Pid): void {
    if (!process.links.delete(pidKey(other))) return;
    if (other.node === this.id) this.processes.get(other.id)?.links.delete(pidKey(process.pid));
    else this.sendRemote(other.node, [Kind.Unlink, other.id, process.pid.id]);
  }

  // ---- lifecycle -------------------------------------------------------------------------

  /** Ends every process with `'shutdown'`, fails pending calls, then drains and closes the transport. */
  async stop(drainTimeoutMs: number): Promise<void> {
    if (this.stopped) return;
    for (const process of [...this.processes.values()]) this.exitProcess(process, 'shutdown');
    this.stopped = true;
    for (const ref of [...this.watches.keys()]) this.dropWatch(ref, false);
    this.calls.stop();
    await this.transport.stop(drainTimeoutMs);
  }

  assertRunning(): void {
    if (this.stopped) throw new NodeStoppedError(`node ${this.id} is stopped`);
  }
}
