import { InvalidArgumentError } from '../common/errors.js';
import type { NodeId } from '../wire/address.js';
import { EXT_REMOTE_FUNCTION, registerExtension } from '../wire/extension.js';
import { currentRuntime, peekRuntime } from './context.js';
import { shipModule } from './module-shipping.js';
import { ObjectRef } from './object-ref.js';
import { shipFunction } from './remote-function.js';
import type { GetOptions, TaskOptions, WaitOptions } from './runtime.js';
import type { ShippedCode } from './shipped-code.js';

/** A value, or a ref to one: what a remote function accepts for each argument. */
export type RefOr<T> = T | ObjectRef<T>;
export type RemoteArgs<A extends unknown[]> = { [K in keyof A]: RefOr<A[K]> };

/** An export of a module file, shipped with the files it lists (see {@link remote}). */
export interface ModuleFunction {
  /** The module: a path or a `file:` URL (`new URL('./work.js', import.meta.url)`). */
  module: string | URL;
  /** The exported function's name. */
  export: string;
  /** Files the module imports (relative imports), shipped with it. @default [] */
  depends?: (string | URL)[];
}

/**
 * A function that runs on the cluster's workers: `f.remote(...args)` submits a task and returns
 * an {@link ObjectRef} at once. Made by {@link remote}. It can be passed to tasks as an argument
 * (a task may then submit it itself: nested tasks).
 */
export class RemoteFunction<A extends unknown[] = unknown[], R = unknown> {
  constructor(
    readonly code: ShippedCode,
    readonly taskOptions: Readonly<TaskOptions> = {},
    /** Module file contents, by sha256 (module functions only). */
    private readonly files?: ReadonlyMap<string, Uint8Array>,
    /** The node that can serve the module's files, for a function received from elsewhere. */
    readonly origin?: NodeId,
  ) {}

  /** Submits one run with these arguments; ref arguments are resolved to their values first. */
  remote(...args: RemoteArgs<A>): ObjectRef<Awaited<R>> {
    return currentRuntime().submit(this.code, args, this.taskOptions, { files: this.files, origin: this.origin }) as ObjectRef<Awaited<R>>;
  }

  /** The same function with other options for the runs submitted through the copy (Ray's `.options()`). */
  options(options: TaskOptions): RemoteFunction<A, R> {
    return new RemoteFunction<A, R>(this.code, { ...this.taskOptions, ...options }, this.files, this.origin);
  }

  /** Files to register where this function is sent from (see the msgpack extension below). */
  get moduleFiles(): ReadonlyMap<string, Uint8Array> | undefined {
    return this.files;
  }
}

const isMap = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

// The code is checked where it runs (its hash, its kind); here only the array's shape.
registerExtension<RemoteFunction>({
  type: EXT_REMOTE_FUNCTION,
  Class: RemoteFunction,
  shape: '[code: map, taskOptions: map, origin: str | nil]',
  toArray(fn) {
    const runtime = peekRuntime();
    if (fn.moduleFiles) runtime?.registerFiles(fn.moduleFiles);
    return [fn.code, fn.taskOptions, fn.origin ?? runtime?.node.id ?? null];
  },
  fromArray: ([code, options, origin]) =>
    isMap(code) && isMap(options) && (origin === null || typeof origin === 'string')
      ? new RemoteFunction(code as unknown as ShippedCode, options as TaskOptions, undefined, origin ?? undefined)
      : undefined,
});

/**
 * Makes a remote function (Ray's `@ray.remote`). Either a self-contained function — its source
 * is shipped, so it may use only its parameters, what it declares, standard and Node globals
 * (`process` is the worker's) and the
 * `zerocos` namespace (a free variable fails here, naming it) — or an export of a module file,
 * shipped with the files it lists in `depends` and imported on the worker (it may import
 * anything installed there).
 * @throws FreeVariableError, InvalidArgumentError
 * @example
 * const square = remote((x: number) => x * x);
 * await get([0, 1, 2, 3].map((i) => square.remote(i))); // [0, 1, 4, 9]
 */
export function remote<A extends unknown[], R>(fn: (...args: A) => R, options?: TaskOptions): RemoteFunction<A, R>;
export function remote<A extends unknown[] = unknown[], R = unknown>(fn: ModuleFunction, options?: TaskOptions): RemoteFunction<A, R>;
export function remote(fn: Function | ModuleFunction, options: TaskOptions = {}): RemoteFunction {
  if (typeof fn === 'function') return new RemoteFunction(shipFunction(fn), options);
  if (typeof fn === 'object' && fn !== null && (typeof fn.module === 'string' || fn.module instanceof URL) && typeof fn.export === 'string') {
    const { shipped, contents } = shipModule(fn.module, fn.export, fn.depends ? { depends: fn.depends } : {});
    return new RemoteFunction(shipped, options, contents);
  }
  throw new InvalidArgumentError('remote() takes a function or {module, export, depends?}');
}

/** The value of a ref, or the values of refs (in order); rejects with a failed task's error. */
export function get<T>(ref: ObjectRef<T>, options?: GetOptions): Promise<T>;
export function get<T>(refs: readonly ObjectRef<T>[], options?: GetOptions): Promise<T[]>;
export function get(refs: ObjectRef | readonly ObjectRef[], options?: GetOptions): Promise<unknown> {
  return currentRuntime().get(refs as ObjectRef[], options);
}

/** `[ready, pending]` once `numReturns` refs are ready (ready ones in completion order) or `timeoutMs` passed. */
export function wait<T>(refs: readonly ObjectRef<T>[], options?: WaitOptions): Promise<[ObjectRef<T>[], ObjectRef<T>[]]> {
  return currentRuntime().wait(refs, options);
}

/** Stores a value in this process's object store (it lives here and moves once, to whoever needs it). */
export function put<T>(value: T): ObjectRef<T> {
  return currentRuntime().put(value);
}

/** Cancels a task; `force` kills the worker running it (it is replaced). False if it already finished. */
export function cancel(ref: ObjectRef, options?: { force?: boolean }): boolean {
  return currentRuntime().cancel(ref, options);
}

/** Drops refs' values now, wherever they are held (refs are otherwise freed when garbage-collected, unless they were sent elsewhere). */
export function free(refs: readonly ObjectRef[]): void {
  currentRuntime().free(refs);
}
