import { InvalidArgumentError, NameTakenError, ZerocosError, isCalleeLost } from '../common/errors.js';
import type { DownMessage } from '../node/messages.js';
import type { Pid } from '../wire/address.js';
import { EXT_ACTOR_HANDLE, registerExtension } from '../wire/extension.js';
import { currentRuntime } from '../task/context.js';
import { ObjectRef } from '../task/object-ref.js';
import { shipClass } from '../task/remote-function.js';
import type { RemoteArgs } from '../task/remote.js';
import { NO_TIMEOUT, type TaskOptions, type TaskRuntime } from '../task/runtime.js';
import type { Demand, WorkerSlot } from '../task/scheduler.js';
import type { ShippedCode } from '../task/shipped-code.js';
import { ACTOR_NAME_PREFIX, WORKER_PROCESS } from '../common/service-names.js';
import { formatActorNew, formatMethodCall, type ActorSpawnOptions } from './actor-protocol.js';

/** The actor is gone (killed, or lost with no restarts left), or a call was lost with it. */
export class ActorDiedError extends ZerocosError {
  override readonly code = 'EACTORDIED';
}

export interface ActorOptions {
  /** A name any client can find it by with {@link getActor}; unique in the cluster. */
  name?: string;
  /** CPUs reserved on its daemon for its lifetime. @default 0 (actors share their worker) */
  numCpus?: number;
  /** Custom resources reserved for its lifetime (`{gpu: 1}`). @default {} */
  resources?: Record<string, number>;
  /**
   * Re-creations after its worker or node is lost. A restarted actor is a new instance: its
   * state is what the constructor (run again with the original arguments) makes. @default 0
   */
  maxRestarts?: number;
  /** Re-sends of a call lost with a crashed actor, once it has restarted. @default 0 (the call fails with ActorDiedError) */
  maxTaskRetries?: number;
  /** Method calls running at once; above 1, async methods interleave at their awaits. @default 1 */
  maxConcurrency?: number;
  /**
   * Outlive the process that created it (Ray's `lifetime="detached"`). Otherwise an actor ends
   * when its creator's task runtime stops or its node is lost. @default false
   */
  detached?: boolean;
}

/** `handle.method.remote(...args)`: each method of the class, as a remote call returning a ref. */
export type ActorHandle<T> = {
  readonly [K in keyof T as T[K] extends (...args: any[]) => any ? K : never]: T[K] extends (...args: infer A) => infer R
    ? { remote(...args: RemoteArgs<A>): ObjectRef<Awaited<R>> }
    : never;
};

type Constructor = new (...args: any[]) => any;

/** A class whose instances live on the cluster's workers (Ray's `@ray.remote class`). */
export class ActorClass<C extends Constructor> {
  constructor(
    private readonly code: ShippedCode,
    private readonly actorOptions: Readonly<ActorOptions>,
  ) {}

  /** Creates one instance on a worker; resolves once it is constructed there. */
  async remote(...args: RemoteArgs<ConstructorParameters<C>>): Promise<ActorHandle<InstanceType<C>>> {
    const core = await ActorCore.create(currentRuntime(), this.code, args, this.actorOptions);
    return core.handle as ActorHandle<InstanceType<C>>;
  }

  /** The same class with other options for the instances created through the copy. */
  options(options: ActorOptions): ActorClass<C> {
    return new ActorClass<C>(this.code, { ...this.actorOptions, ...options });
  }
}

/**
 * Makes a class an actor class: `await Counter.remote(args)` places an instance on a worker and
 * returns a handle; `handle.incr.remote(1)` returns a ref. The class is shipped as source, so
 * like a remote function it may not refer to free variables.
 * @example
 * const Counter = actor(class Counter { n = 0; incr() { return ++this.n; } });
 * const c = await Counter.remote();
 * await get(c.incr.remote()); // 1
 */
export function actor<C extends Constructor>(cls: C, options: ActorOptions = {}): ActorClass<C> {
  return new ActorClass<C>(shipClass(cls), options);
}

/**
 * The named actor `name`, from any client: asks every worker in the cluster. Give the actor's
 * class as the type (`getActor<Counter>('counter')`) to call its methods: without one the
 * handle has none (nothing here can check what the named actor is).
 * @throws ActorDiedError when no worker has it
 */
export async function getActor<T = unknown>(name: string): Promise<ActorHandle<T>> {
  const runtime = currentRuntime();
  const pid = await findNamed(runtime, name);
  if (!pid) throw new ActorDiedError(`no actor named '${name}' in the cluster`);
  return ActorCore.attach(runtime, pid, name).handle as ActorHandle<T>;
}

/** Kills an actor at once (Erlang's `exit(Pid, kill)`): no restart; its pending calls fail with ActorDiedError. */
export function kill(handle: ActorHandle<unknown>): void {
  coreOf(handle).kill();
}

async function findNamed(runtime: TaskRuntime, name: string): Promise<Pid | undefined> {
  const found = await Promise.all(
    (await runtime.placement.currentWorkers()).map((worker) => runtime.node.lookup(ACTOR_NAME_PREFIX + name, worker, { timeoutMs: 2000 }).catch(() => undefined)),
  );
  return found.find((pid) => pid !== undefined);
}

const cores = new WeakMap<object, ActorCore>();

function coreOf(handle: unknown): ActorCore {
  const core = typeof handle === 'object' && handle !== null ? cores.get(handle) : undefined;
  if (!core) throw new InvalidArgumentError('not an actor handle');
  return core;
}

/** The target of every handle proxy: it names the class that msgpack recognises handles by. */
class ActorHandleTarget {
  constructor(readonly core: ActorCore) {}
}

/**
 * One actor as a caller sees it. The creator's core places it, monitors it and restarts it
 * (`maxRestarts`); a core made from a handle received elsewhere or from {@link getActor} only
 * calls it.
 */
class ActorCore {
  readonly handle: object;
  private state: 'alive' | 'restarting' | 'dead' = 'alive';
  private deathReason = '';
  private restarts = 0;
  private monitorRef: number | undefined;
  /** Calls waiting for their ref arguments or for a restart, chained to keep their order. */
  private chain: Promise<void> | undefined;
  private chained = 0;
  private revived: Promise<void> | undefined;

  private constructor(
    private readonly runtime: TaskRuntime,
    private pid: Pid,
    readonly name: string | undefined,
    /** Only on the creator's core: what it takes to re-create it. */
    private readonly origin?: { code: ShippedCode; args: unknown[]; options: ActorOptions; slot: WorkerSlot & { demand: Demand } },
  ) {
    const target = new ActorHandleTarget(this);
    this.handle = new Proxy(target, {
      get: (t, prop) => {
        // Not methods: what promises, msgpack, JSON and inspection look for.
        if (typeof prop === 'symbol' || prop === 'then' || prop === 'constructor' || prop === 'toJSON' || prop === 'core') return Reflect.get(t, prop);
        return { remote: (...args: unknown[]) => this.call(prop, args) };
      },
    });
    cores.set(this.handle, this);
    if (origin) this.watch();
  }

  static async create(runtime: TaskRuntime, code: ShippedCode, args: unknown[], options: ActorOptions): Promise<ActorCore> {
    if (options.name !== undefined) {
      if (typeof options.name !== 'string' || options.name === '') throw new InvalidArgumentError('an actor name is a non-empty string');
      if (await findNamed(runtime, options.name)) throw new NameTakenError(`an actor named '${options.name}' already exists in the cluster`);
    }
    const { pid, slot } = await spawnActor(runtime, code, args, options);
    return new ActorCore(runtime, pid, options.name, { code, args, options, slot });
  }

  static attach(runtime: TaskRuntime, pid: Pid, name: string | undefined): ActorCore {
    return new ActorCore(runtime, pid, name);
  }

  get currentPid(): Pid {
    return this.pid;
  }

  call(method: string, args: unknown[]): ObjectRef {
    const ref = this.runtime.pendingRef();
    if (this.state === 'dead') {
      this.runtime.settleError(ref.id, this.died());
    } else if (this.chained === 0 && this.state === 'alive' && !args.some((arg) => arg instanceof ObjectRef)) {
      this.send(ref.id, method, args, 0);
    } else {
      // Behind earlier calls still waiting: keep the caller's order.
      this.chained++;
      this.chain = (this.chain ?? Promise.resolve())
        .then(async () => {
          const wireArgs = await this.runtime.resolveArgs({ args });
          await this.revived;
          if (this.state === 'dead') throw this.died();
          this.send(ref.id, method, wireArgs, 0);
        })
        .catch((error: Error) => this.runtime.settleError(ref.id, error))
        .finally(() => {
          if (--this.chained === 0) this.chain = undefined;
        });
    }
    return ref;
  }

  private send(refId: number, method: string, args: unknown[], attempt: number): void {
    const pid = this.pid;
    this.runtime.node.call(pid, formatMethodCall(refId, method, args), { timeoutMs: NO_TIMEOUT }).then(
      (reply) => this.runtime.settleReply(refId, reply, pid.node),
      (error: Error) => {
        if (!isCalleeLost(error)) {
          return this.runtime.settleError(refId, error);
        }
        // The actor went away with this call: a restart (if any) is on its way.
        const retries = this.origin?.options.maxTaskRetries ?? 0;
        if (attempt < retries && this.state !== 'dead') {
          void Promise.resolve(this.revived ?? this.lost(pid)).then(() => {
            if (this.state === 'dead') this.runtime.settleError(refId, this.died());
            else this.send(refId, method, args, attempt + 1);
          });
          return;
        }
        this.runtime.settleError(refId, new ActorDiedError(`actor ${this.describe()} was lost during the call to '${method}': ${error.message}`, { cause: error }));
      },
    );
  }

  kill(): void {
    if (this.state === 'dead') return;
    this.state = 'dead';
    this.deathReason = 'killed';
    if (this.monitorRef !== undefined) this.runtime.node.demonitor(this.monitorRef);
    this.runtime.node.kill(this.pid);
    if (this.origin) this.runtime.placement.unplace(this.origin.slot, this.origin.slot.demand);
  }

  private watch(): void {
    const pid = this.pid;
    this.monitorRef = this.runtime.node.monitor(pid, (down: DownMessage) => {
      this.monitorRef = undefined;
      if (this.pid === pid) void this.lost(pid, down.reason);
    });
  }

  /** The actor at `pid` is gone: restart it if allowed, else it is dead. */
  private lost(pid: Pid, reason: unknown = 'lost'): Promise<void> {
    if (this.pid !== pid || this.state !== 'alive') return this.revived ?? Promise.resolve();
    const origin = this.origin;
    if (origin) this.runtime.placement.unplace(origin.slot, origin.slot.demand);
    if (reason === 'nodedown') this.runtime.placement.markDead(pid.node);
    // Killed (by any holder of a handle) means dead for good, as Ray's kill(no_restart=True).
    if (!origin || reason === 'killed' || this.restarts >= (origin.options.maxRestarts ?? 0)) {
      this.state = 'dead';
      this.deathReason = `lost (${typeof reason === 'string' ? reason : JSON.stringify(reason)})${origin ? ` after ${this.restarts} restart(s)` : ''}`;
      return Promise.resolve();
    }
    this.state = 'restarting';
    this.restarts++;
    this.revived = spawnActor(this.runtime, origin.code, origin.args, origin.options).then(
      ({ pid: fresh, slot }) => {
        origin.slot = slot;
        this.pid = fresh;
        this.state = 'alive';
        this.revived = undefined;
        this.watch();
      },
      (error: Error) => {
        this.state = 'dead';
        this.deathReason = `could not be restarted: ${error.message}`;
        this.revived = undefined;
      },
    );
    return this.revived;
  }

  private died(): ActorDiedError {
    return new ActorDiedError(`actor ${this.describe()} is dead (${this.deathReason || 'lost'})`);
  }

  private describe(): string {
    return this.name !== undefined ? `'${this.name}'` : `${this.pid.id}@${this.pid.node}`;
  }
}

async function spawnActor(
  runtime: TaskRuntime,
  code: ShippedCode,
  args: unknown[],
  options: ActorOptions,
): Promise<{ pid: Pid; slot: WorkerSlot & { demand: Demand } }> {
  const placement: TaskOptions = { numCpus: options.numCpus ?? 0, ...(options.resources ? { resources: options.resources } : {}) };
  const slot = await runtime.placement.place(placement);
  try {
    const wireArgs = await runtime.resolveArgs({ args });
    const spawn: ActorSpawnOptions = {
      ...(options.name !== undefined ? { name: options.name } : {}),
      maxConcurrency: options.maxConcurrency ?? 1,
      ...(options.detached ? {} : { owner: runtime.node.id }),
    };
    const id = await runtime.node.call<number>({ name: WORKER_PROCESS, node: slot.node }, formatActorNew(code, wireArgs, spawn), { timeoutMs: 30_000 });
    return { pid: { node: slot.node, id }, slot };
  } catch (error) {
    runtime.placement.unplace(slot, slot.demand);
    throw error;
  }
}

// A handle travels as the actor's pid and name; the receiver gets a core that can call it.
registerExtension<ActorHandleTarget>({
  type: EXT_ACTOR_HANDLE,
  Class: ActorHandleTarget,
  shape: '[node: str, pid id: uint, name: str | nil]',
  toArray: (target) => [target.core.currentPid.node, target.core.currentPid.id, target.core.name ?? null],
  fromArray: ([node, id, name]) =>
    typeof node === 'string' && Number.isSafeInteger(id) && (id as number) >= 0 && (name === null || typeof name === 'string')
      ? ActorCore.attach(currentRuntime(), { node, id: id as number }, name ?? undefined).handle
      : undefined,
});
