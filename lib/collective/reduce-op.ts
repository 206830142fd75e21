import { InvalidArgumentError } from '../common/errors.js';
import { isTypedArray, type TypedArray } from './frames.js';

/**
 * How `reduce`, `allreduce` and `scan` combine values: a built-in name or a function of two
 * values. Functions must be associative and commutative (as MPI assumes of its ops): the tree
 * and doubling algorithms combine partial results in an order that depends on the group size.
 * A function op runs on every rank: it is part of the rank's `main`, which was shipped already.
 */
export type ReduceOp = 'sum' | 'max' | 'min' | 'prod' | ((a: any, b: any) => any);

type Scalar = number | bigint;

const SCALAR_OPS: Record<'sum' | 'max' | 'min' | 'prod', (a: Scalar, b: Scalar) => Scalar> = {
  sum: (a, b) => (a as number) + (b as number),
  prod: (a, b) => (a as number) * (b as number),
  max: (a, b) => (a > b ? a : b),
  min: (a, b) => (a < b ? a : b),
};

/**
 * The binary function behind `op`. Built-in ops work on numbers and bigints, and element-wise on
 * typed arrays and arrays of numbers of equal length (a new array of the same type is returned:
 * received buffers may be shared with the sender on one node, so they are never written to).
 * @throws InvalidArgumentError for an unknown op name (at once), or, when applied, for values it cannot combine
 */
export function combiner(op: ReduceOp): (a: unknown, b: unknown) => unknown {
  if (typeof op === 'function') return op;
  const scalar = typeof op === 'string' ? SCALAR_OPS[op as keyof typeof SCALAR_OPS] : undefined;
  if (!scalar) throw new InvalidArgumentError(`unknown reduce op ${JSON.stringify(op)}: use 'sum', 'max', 'min', 'prod' or a function`);
  return (a, b) => {
    if ((typeof a === 'number' && typeof b === 'number') || (typeof a === 'bigint' && typeof b === 'bigint')) return scalar(a, b);
    if (isTypedArray(a) && isTypedArray(b) && a.constructor === b.constructor && a.length === b.length) {
      const out = new (a.constructor as new (n: number) => TypedArray)(a.length);
      for (let i = 0; i < a.length; i++) out[i] = scalar(a[i]!, b[i]!);
      return out;
    }
    if (Array.isArray(a) && Array.isArray(b) && a.length === b.length) return a.map((x, i) => scalar(x as Scalar, b[i] as Scalar));
    throw new InvalidArgumentError(`op '${op}' cannot combine ${describe(a)} with ${describe(b)}`);
  };
}

function describe(value: unknown): string {
  if (isTypedArray(value)) return `${value.constructor.name}(${value.length})`;
  if (Array.isArray(value)) return `an array of ${value.length}`;
  return typeof value;
}
