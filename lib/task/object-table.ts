import { InvalidArgumentError, RemoteError } from '../common/errors.js';
import { errorInfoOf } from '../common/errors.js';
import { CallMessage, SentMessage } from '../node/messages.js';
import type { Node } from '../node/node.js';
import type { NodeId } from '../wire/address.js';
import { LocatedValue, ObjectRef, carriedValue, carry, setRefEscapeHook } from './object-ref.js';
import { ObjectLostError } from './task-errors.js';
import { formatFetch, formatFile, formatFree, formatResolve, ownerOfKey, parseFree, parseObjectsRequest, parseResolution, type Resolution } from './objects-protocol.js';
import { OBJECTS_PROCESS } from '../common/service-names.js';

/** "No timeout" for calls that end by their reply or by failure detection (the call monitors its target). */
export const NO_TIMEOUT = Infinity;

/** How an object settled, as its owner records it: its value, where it is held, or why it failed. */
export type Settled = { value: unknown } | { at: NodeId; key: string } | { error: Error };

interface Entry {
  settled: Settled | undefined;
  waiters: (() => void)[] | undefined;
  /** The ref left this process: someone else may hold it, so it is never freed automatically. */
  pinned: boolean;
  /** The owner's last ref was collected before the value came: drop the entry once it settles. */
  orphaned: boolean;
  /**
   * The ref, held until the entry first settles: then a value or error moves onto it (see
   * {@link carriedValue}) and the entry goes, unless the ref has left the process.
   */
  ref: ObjectRef | undefined;
  /** Makes a value held elsewhere again if its holder is lost (Ray's lineage): true if it started to. */
  remake: (() => boolean) | undefined;
  remakes: number;
}

/** A value lost with its holder is re-made at most this many times. */
const MAX_REMAKES = 3;

/** Tables of this process by node id, for the ref-escape hook (tests run several nodes in one process). */
const tables = new Map<NodeId, ObjectTable>();
setRefEscapeHook((ref) => tables.get(ref.owner)?.pin(ref));

/**
 * A node's objects: the refs it owns (Ray's ownership: whether each value is ready, and where it
 * lives), the values it holds for other owners (large task results), and the module files it
 * ships. Its {@link OBJECTS_PROCESS} answers other nodes' `resolve`, `fetch` and `file` requests.
 *
 * A ref that never leaves this process carries its value itself (see {@link carriedValue}): a
 * `put` value from the start, a task's or call's small result or error once it came. The table
 * keeps an entry only while the value is pending, while it is held elsewhere (freed there when
 * the owner's last ObjectRef to it is garbage-collected), and for refs encoded for another node
 * (pinned: they may be borrowed there, so never freed automatically). `free` drops any of them.
 */
export class ObjectTable {
  private nextId = 1;
  private readonly entries = new Map<number, Entry>();
  /** Values held here for other nodes, by `owner|id`. */
  private readonly held = new Map<string, unknown>();
  /** Contents of module files this node ships, by sha256. */
  private readonly files = new Map<string, Uint8Array>();
  private readonly collected = new FinalizationRegistry<number>((id) => this.collect(id));
  private stopped = false;
  /** Values re-made from their lineage. */
  remade = 0;
  /** Keys a `free` named that the sender does not own: not freed (see {@link ownerOfKey}). */
  freesRefused = 0;

  constructor(private readonly node: Node) {
    node.spawn(
      async (self) => {
        for await (const message of self) this.serve(message);
      },
      // Senders, so that a `free` is taken only from the owner of the keys it names.
      { name: OBJECTS_PROCESS, senders: true },
    );
    tables.set(node.id, this);
  }

  /** Entries this node owns. */
  get size(): number {
    return this.entries.size;
  }

  /** Values held here for others. */
  get heldCount(): number {
    return this.held.size;
  }

  /** A new ref owned here, pending until {@link settle}. */
  create<T = unknown>(): ObjectRef<T> {
    const id = this.nextId++;
    const ref = new ObjectRef<T>(id, this.node.id);
    this.entries.set(id, { settled: undefined, waiters: undefined, pinned: false, orphaned: false, ref, remake: undefined, remakes: 0 });
    return ref;
  }

  /** A ref to `value`, owned here: it carries the value until it is first encoded for another node. */
  put<T = unknown>(value: T): ObjectRef<T> {
    const ref = new ObjectRef<T>(this.nextId++, this.node.id);
    carry(ref, { value });
    return ref;
  }

  /** Records how `id` settled and wakes whoever waits for it (a second settle is ignored). */
  settle(id: number, settled: Settled, remake?: () => boolean): void {
    const entry = this.entries.get(id);
    if (!entry || entry.settled) return;
    entry.settled = settled;
    entry.remake = 'at' in settled ? remake : undefined;
    const waiters = entry.waiters;
    entry.waiters = undefined;
    if (waiters) for (const wake of waiters) wake();
    if (entry.orphaned) return this.drop(id);
    const ref = entry.ref;
    entry.ref = undefined;
    if (!ref || entry.pinned) return;
    if ('at' in settled) {
      // Held elsewhere: the entry stays, to free the value there once the ref is collected.
      this.collected.register(ref, id);
      return;
    }
    carry(ref, settled);
    this.entries.delete(id);
  }

  /** How `ref` (owned here) settled, if it has (no waiting). */
  settledNow(ref: ObjectRef): Settled | undefined {
    return carriedValue(ref) ?? this.entries.get(ref.id)?.settled;
  }

  /** How `ref` settled, waiting until it has; asks its owner when that is another node. */
  settledOf(ref: ObjectRef): Promise<Settled> {
    if (ref.owner !== this.node.id) return this.resolveRemote(ref);
    const carried = carriedValue(ref);
    if (carried) return Promise.resolve(carried);
    const entry = this.entries.get(ref.id);
    if (!entry) return Promise.reject(new ObjectLostError(`${ref} is unknown to its owner (it was freed)`));
    if (entry.settled) return Promise.resolve(entry.settled);
    return new Promise((resolve) => (entry.waiters ??= []).push(() => resolve(entry.settled!)));
  }

  /** The value of `ref`, fetched from its holder if need be (and re-made if its holder was lost). */
  async valueOf(ref: ObjectRef): Promise<unknown> {
    const settled = await this.settledOf(ref);
    if ('error' in settled) throw settled.error;
    if ('value' in settled) return settled.value;
    const entry = ref.owner === this.node.id ? this.entries.get(ref.id) : undefined;
    let value: unknown;
    try {
      value = await this.fetch(settled.at, settled.key);
    } catch (error) {
      if (entry && entry.settled === settled && this.remake(ref.id)) return this.valueOf(ref);
      if (entry && entry.settled === undefined) return this.valueOf(ref); // another get is re-making it
      throw error;
    }
    // Fetched once: later gets on this owner answer from memory.
    if (entry?.settled === settled) {
      entry.settled = { value };
      entry.remake = undefined;
    }
    return value;
  }

  /** Re-makes `id`'s value from its lineage (its holder was lost): false when it cannot (any more). */
  remake(id: number): boolean {
    const entry = this.entries.get(id);
    if (!entry?.remake || entry.remakes >= MAX_REMAKES) return false;
    const remake = entry.remake;
    entry.remakes++;
    entry.remake = undefined;
    entry.settled = undefined;
    this.remade++;
    return remake();
  }

  /** A value held on `at` under `key` (this node included). @throws ObjectLostError */
  async fetch(at: NodeId, key: string): Promise<unknown> {
    if (at === this.node.id) {
      if (!this.held.has(key)) throw new ObjectLostError(`object ${key} is not held here (freed?)`);
      return this.held.get(key);
    }
    try {
      return await this.node.call({ name: OBJECTS_PROCESS, node: at }, formatFetch(key), { timeoutMs: NO_TIMEOUT });
    } catch (error) {
      throw new ObjectLostError(`object ${key} could not be fetched from ${at}: ${(error as Error).message}`, { cause: error });
    }
  }

  /** Resolves ref arguments: the value when it is here, else where it lives (a LocatedValue the worker fetches). */
  resolveArgs(args: readonly unknown[]): Promise<unknown[]> {
    return Promise.all(
      args.map(async (arg) => {
        if (!(arg instanceof ObjectRef)) return arg;
        const settled = await this.settledOf(arg);
        if ('error' in settled) throw settled.error;
        if ('value' in settled) return settled.value;
        if (settled.at === this.node.id) return this.fetch(settled.at, settled.key);
        return new LocatedValue(settled.at, settled.key);
      }),
    );
  }

  /** Keeps `value` here for another node, under `key` (`owner|id`), until that owner frees it. */
  hold(key: string, value: unknown): void {
    this.held.set(key, value);
  }

  /** Module file contents this node serves (by sha256), for the life of the table. */
  registerFiles(files: ReadonlyMap<string, Uint8Array>): void {
    for (const [hash, bytes] of files) this.files.set(hash, bytes);
  }

  /** The contents of a module file, from the node that shipped it. */
  fetchFile(from: NodeId, hash: string): Promise<Uint8Array> {
    return this.node.call<Uint8Array>({ name: OBJECTS_PROCESS, node: from }, formatFile(hash), { timeoutMs: 30_000 });
  }

  /**
   * Marks a ref as escaped (it was encoded for another node): it is never freed automatically.
   * A value the ref carried moves into the table, where other nodes' `resolve` finds it.
   */
  pin(ref: ObjectRef): void {
    const carried = carriedValue(ref);
    if (carried) {
      carry(ref, undefined);
      this.entries.set(ref.id, { settled: carried, waiters: undefined, pinned: true, orphaned: false, ref: undefined, remake: undefined, remakes: 0 });
      return;
    }
    const entry = this.entries.get(ref.id);
    if (entry) entry.pinned = true;
  }

  /** Forgets refs this node owns, pinned or not; values held elsewhere are dropped there. */
  free(refs: readonly ObjectRef[]): void {
    for (const ref of refs) {
      carry(ref, undefined);
      this.drop(ref.id);
    }
  }

  stop(): void {
    this.stopped = true;
    if (tables.get(this.node.id) === this) tables.delete(this.node.id);
  }

  private async resolveRemote(ref: ObjectRef): Promise<Settled> {
    let resolution: Resolution;
    try {
      const answer = await this.node.call({ name: OBJECTS_PROCESS, node: ref.owner }, formatResolve(ref.id), { timeoutMs: NO_TIMEOUT });
      const parsed = parseResolution(answer);
      if (!parsed) throw new InvalidArgumentError(`malformed resolve answer from ${ref.owner}`);
      resolution = parsed;
    } catch (error) {
      if (error instanceof RemoteError && error.code === 'EOBJECTLOST') throw new ObjectLostError(error.message);
      throw new ObjectLostError(`the owner of ${ref} is lost: ${(error as Error).message}`, { cause: error });
    }
    switch (resolution[0]) {
      case 0: return { value: resolution[1] };
      case 1: return { at: resolution[1], key: resolution[2] };
      default: return { error: new RemoteError(resolution[1]) };
    }
  }

  /** Requests to {@link OBJECTS_PROCESS}: see docs/protocol.md §11.3. */
  private serve(message: unknown): void {
    if (message instanceof SentMessage) {
      // ['free', keys]: an owner no longer needs values held here. Only the owner named in a
      // key may drop it, or any peer could erase results other nodes still need.
      const keys = parseFree(message.message);
      for (const key of keys ?? []) {
        if (ownerOfKey(key) === message.from.node) this.held.delete(key);
        else this.freesRefused++;
      }
      return;
    }
    if (!(message instanceof CallMessage)) return;
    const request = parseObjectsRequest(message.request);
    if (!request) return void message.fail(new InvalidArgumentError(`${OBJECTS_PROCESS} does not understand ${JSON.stringify(message.request)}`));
    const [op, field] = request;
    if (op === 'resolve') {
      const entry = this.entries.get(field);
      if (!entry) return void message.fail(new ObjectLostError(`object ${field} is unknown to its owner ${this.node.id} (it was freed)`));
      const answer = () => message.reply(toResolution(entry.settled!));
      if (entry.settled) answer();
      else (entry.waiters ??= []).push(answer);
    } else if (op === 'fetch') {
      if (this.held.has(field)) message.reply(this.held.get(field));
      else message.fail(new ObjectLostError(`object ${field} is not held on ${this.node.id} (freed?)`));
    } else {
      const bytes = this.files.get(field);
      if (bytes) message.reply(bytes);
      else message.fail(new ObjectLostError(`module file ${field} is not known on ${this.node.id}`));
    }
  }

  /** The owner's last local ref to `id` was garbage-collected. */
  private collect(id: number): void {
    const entry = this.entries.get(id);
    if (!entry || entry.pinned) return;
    if (!entry.settled) entry.orphaned = true;
    else this.drop(id);
  }

  private drop(id: number): void {
    const entry = this.entries.get(id);
    if (!entry) return;
    this.entries.delete(id);
    const settled = entry.settled;
    if (!settled || !('at' in settled)) return;
    if (settled.at === this.node.id) this.held.delete(settled.key);
    else if (!this.stopped) this.node.send({ name: OBJECTS_PROCESS, node: settled.at }, formatFree([settled.key]));
  }
}

function toResolution(settled: Settled): Resolution {
  if ('value' in settled) return [0, settled.value];
  if ('at' in settled) return [1, settled.at, settled.key];
  return [2, errorInfoOf(settled.error)];
}
