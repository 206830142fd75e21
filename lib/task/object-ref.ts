import type { NodeId } from '../wire/address.js';
import { EXT_LOCATED_VALUE, EXT_OBJECT_REF, registerExtension } from '../wire/extension.js';

/** A value (or a failure) an {@link ObjectRef} carries itself (see {@link carriedValue}). */
export type Carried = { value: unknown } | { error: Error };

let readCarried: (ref: ObjectRef) => Carried | undefined;
let writeCarried: (ref: ObjectRef, carried: Carried | undefined) => void;

/**
 * A reference to a value that exists, or will exist, somewhere in the cluster: the result of a
 * task or actor call, or a value given to `put`. Made at once; `get(ref)` waits for the value.
 *
 * The node that made the ref is its **owner**: it knows whether the value is ready and where it
 * lives (Ray's ownership model). A ref can be passed to tasks (as an argument it is resolved
 * before the task runs), returned from tasks and sent in messages; wherever it lands, `get`
 * asks the owner and fetches the value straight from the node that holds it.
 *
 * Deliberately not a thenable: a task that returns a ref returns the ref, not its value.
 */
export class ObjectRef<T = unknown> {
  declare private readonly __type?: T;
  /** See {@link carriedValue}; a private field, so that it stays out of the API. */
  #carried: Carried | undefined = undefined;

  static {
    readCarried = (ref) => ref.#carried;
    writeCarried = (ref, carried) => {
      ref.#carried = carried;
    };
  }

  constructor(
    /** Unique among the owner's refs. */
    readonly id: number,
    readonly owner: NodeId,
  ) {}

  toString(): string {
    return `ObjectRef(${this.id}@${this.owner})`;
  }
}

/**
 * An argument the owner resolved to a value held on another node: the worker fetches it from
 * `at` itself, so the value moves once, holder to worker, never through the owner.
 */
export class LocatedValue {
  constructor(
    readonly at: NodeId,
    readonly key: string,
  ) {}
}

/**
 * The value `ref` carries while it has not left its owner's process: a `put` value, or a task's
 * or call's small result (or error) once it came. The ref holds it, not the owner's table, so a
 * ref the user drops takes its value with it at the next young-generation GC; a table entry
 * would wait for a full (mark-compact) GC to clear its FinalizationRegistry cell. bench tasks:
 * 1 M puts left 1.05 M entries and 686 MB of heap in the table before; the task and call
 * workloads, 98 k entries. The owner's table takes the value over when the ref is first encoded
 * for another node.
 */
export function carriedValue(ref: ObjectRef): Carried | undefined {
  return readCarried(ref);
}

/** Sets (or, with undefined, drops) the value `ref` carries: see {@link carriedValue}. */
export function carry(ref: ObjectRef, carried: Carried | undefined): void {
  writeCarried(ref, carried);
}

/** Called when a ref is encoded for another node: its owner can no longer know who holds it. */
let onEscape: ((ref: ObjectRef) => void) | undefined;

/** Installs the hook the local runtime uses to pin refs that leave this process. */
export function setRefEscapeHook(hook: ((ref: ObjectRef) => void) | undefined): void {
  onEscape = hook;
}

const isString = (value: unknown): value is string => typeof value === 'string';
const isId = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) >= 0;

// Registered globally, so the kernel's codec carries refs wherever they are nested in a message,
// at no cost to messages that hold none.
registerExtension<ObjectRef>({
  type: EXT_OBJECT_REF,
  Class: ObjectRef,
  shape: '[id: uint, owner: str]',
  toArray(ref) {
    onEscape?.(ref);
    return [ref.id, ref.owner];
  },
  fromArray: ([id, owner]) => (isId(id) && isString(owner) ? new ObjectRef(id, owner) : undefined),
});

registerExtension<LocatedValue>({
  type: EXT_LOCATED_VALUE,
  Class: LocatedValue,
  shape: '[at: str, key: str]',
  toArray: (value) => [value.at, value.key],
  fromArray: ([at, key]) => (isString(at) && isString(key) ? new LocatedValue(at, key) : undefined),
});
