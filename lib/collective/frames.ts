/**
 * How the values of one rank-to-rank message travel. A message is a list of parts; each typed
 * array in them goes as a binary message of its own (the kernel sends a Uint8Array message as a
 * separate ZeroMQ frame, never through msgpack, and delivers it on one node by reference), the
 * rest in a small header message sent just before. The receiving port reads the header, then
 * takes the announced binary messages, which follow it in order (messages from one process to
 * another keep their order).
 */
import { InvalidArgumentError } from '../common/errors.js';

/** Any typed array (not DataView): what travels as a binary frame. */
export interface TypedArray extends ArrayBufferView {
  readonly length: number;
  [index: number]: number | bigint;
}

/** 0: a point-to-point message; 1: a step of a collective; 2: a step of `shrink`'s agreement. */
export type Channel = 0 | 1 | 2;

/** The longest communicator context (see {@link Header}): nesting `split`s deeper than this is refused. */
export const MAX_CONTEXT_LENGTH = 512;

/**
 * The header message: `[channel, tag, step, types, parts]`, then `context` when the message
 * belongs to a communicator made by `split` or `shrink` (the group's own communicator has the
 * context '' and leaves it out). Every typed array in the parts, at
 * the top or nested in plain arrays and objects, is replaced by a marker `{"~zcbin": i}` and
 * travels as the i-th binary message after the header, of class `types[i]`.
 *
 * Why not msgpack: the wire codec packs a typed array other than Uint8Array as bytes it does not
 * own (msgpackr with `moreTypes: false`), so none may reach it.
 */
export type Header = [channel: Channel, tag: number, step: number, types: string[], parts: unknown[], context?: string];

const MARKER = '~zcbin';

/** How deep values are searched for typed arrays (msgpack refuses deeper nesting anyway). */
const MAX_DEPTH = 64;

const TYPED: ReadonlyArray<new (buffer: ArrayBufferLike, byteOffset?: number, length?: number) => TypedArray> = [
  Float64Array, Float32Array, Int32Array, Uint32Array, Int16Array, Uint16Array, Int8Array, Uint8Array,
  Uint8ClampedArray, BigInt64Array, BigUint64Array,
];
const BY_NAME = new Map(TYPED.map((C) => [C.name, C]));

export function isTypedArray(value: unknown): value is TypedArray {
  return ArrayBuffer.isView(value) && !(value instanceof DataView);
}

/** The header for `parts` and the binary messages that follow it. */
export function encodeParts(channel: Channel, tag: number, step: number, parts: readonly unknown[], context = ''): { header: Header; blobs: Uint8Array[] } {
  const types: string[] = [];
  const blobs: Uint8Array[] = [];
  const extract = (value: unknown, depth: number): unknown => {
    if (isTypedArray(value)) {
      // A Buffer or other subclass travels as the standard class it extends.
      types.push(TYPED.find((C) => value instanceof C)!.name);
      blobs.push(new Uint8Array(value.buffer, value.byteOffset, value.byteLength));
      return { [MARKER]: blobs.length - 1 };
    }
    if (depth >= MAX_DEPTH || typeof value !== 'object' || value === null) return value;
    // Copied only when something inside was replaced: plain data goes on as it is.
    if (Array.isArray(value)) {
      let copy: unknown[] | undefined;
      value.forEach((item, i) => {
        const out = extract(item, depth + 1);
        if (out !== item) (copy ??= [...value])[i] = out;
      });
      return copy ?? value;
    }
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) return value;
    let copy: Record<string, unknown> | undefined;
    for (const [key, item] of Object.entries(value)) {
      const out = extract(item, depth + 1);
      if (out !== item) (copy ??= { ...value })[key] = out;
    }
    return copy ?? value;
  };
  const header: Header = [channel, tag, step, types, parts.map((part) => extract(part, 0))];
  if (context !== '') header.push(context);
  return { header, blobs };
}

/** True when `value` has the shape of a {@link Header} (what a port accepts). */
export function isHeader(value: unknown): value is Header {
  if (!Array.isArray(value) || (value.length !== 5 && value.length !== 6)) return false;
  const [channel, tag, step, types, parts, context] = value as unknown[];
  return (
    (channel === 0 || channel === 1 || channel === 2) && Number.isInteger(tag) && Number.isInteger(step) &&
    (value.length === 5 || (typeof context === 'string' && context !== '' && context.length <= MAX_CONTEXT_LENGTH)) &&
    Array.isArray(types) && Array.isArray(parts) && types.every((type) => typeof type === 'string' && BY_NAME.has(type))
  );
}

/** The communicator context of `header` ('' for the group's own communicator). */
export function contextOf(header: Header): string {
  return header[5] ?? '';
}

/** How many binary messages follow `header`. */
export function blobCount(header: Header): number {
  return header[3].length;
}

/**
 * The parts of a received message, its markers replaced by typed arrays of their class over
 * the received bytes (copied only when the bytes are not aligned for it).
 * @throws InvalidArgumentError when a byte count is not a whole number of elements, or a marker is out of range
 */
export function decodeParts(header: Header, blobs: readonly Uint8Array[]): unknown[] {
  const [, , , types, parts] = header;
  if (types.length === 0) return parts;
  if (blobs.length !== types.length) throw new InvalidArgumentError(`${types.length} binary parts announced, ${blobs.length} received`);
  const arrays = types.map((type, i) => typedFrom(type, blobs[i]!));
  const restore = (value: unknown, depth: number): unknown => {
    if (depth > MAX_DEPTH || typeof value !== 'object' || value === null) return value;
    if (Array.isArray(value)) {
      // Written only where a marker was: unchanged parts may be the sender's own objects (on one node).
      for (let i = 0; i < value.length; i++) {
        const out = restore(value[i], depth + 1);
        if (out !== value[i]) value[i] = out;
      }
      return value;
    }
    const record = value as Record<string, unknown>;
    const index = record[MARKER];
    if (typeof index === 'number' && Object.keys(record).length === 1) {
      const array = arrays[index];
      if (!array) throw new InvalidArgumentError(`binary part ${index} of ${arrays.length} does not exist`);
      return array;
    }
    for (const key of Object.keys(record)) {
      const out = restore(record[key], depth + 1);
      if (out !== record[key]) record[key] = out;
    }
    return record;
  };
  return parts.map((part) => restore(part, 0));
}

function typedFrom(type: string, bytes: Uint8Array): TypedArray {
  const C = BY_NAME.get(type)!;
  const size = (C as unknown as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT;
  if (bytes.byteLength % size !== 0) throw new InvalidArgumentError(`${bytes.byteLength} bytes are not a whole number of ${type} elements`);
  // new Uint8Array(view) copies to a fresh buffer (Buffer#slice would not: it is subarray).
  const aligned = bytes.byteOffset % size === 0 ? bytes : new Uint8Array(bytes);
  return new C(aligned.buffer, aligned.byteOffset, aligned.byteLength / size);
}
