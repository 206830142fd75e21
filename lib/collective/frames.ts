/**
 * How the values of one rank-to-rank message travel. A message is a list of parts; each typed
 * array part goes as a binary message of its own (the kernel sends a Uint8Array message as a
 * separate ZeroMQ frame, never through msgpack, and delivers it on one node by reference), the
 * other parts inline in a small header message sent just before. The receiving port reads the
 * header, then takes the announced binary messages, which follow it in order (messages from one
 * process to another keep their order).
 */
import { InvalidArgumentError } from '../common/errors.js';

/** Any typed array (not DataView): what travels as a binary frame. */
export interface TypedArray extends ArrayBufferView {
  readonly length: number;
  [index: number]: number | bigint;
}

/** 0: a point-to-point message; 1: a step of a collective. */
export type Channel = 0 | 1;

/**
 * The header message: `[channel, tag, step, kinds, inline]`. `kinds[i]` is 0 for an inline
 * part (its value in `inline[i]`) or the typed array's class name for a binary one (then
 * `inline[i]` is null and the bytes follow as the next binary message).
 */
export type Header = [channel: Channel, tag: number, step: number, kinds: (string | 0)[], inline: unknown[]];

const TYPED: ReadonlyArray<new (buffer: ArrayBufferLike, byteOffset?: number, length?: number) => TypedArray> = [
  Float64Array, Float32Array, Int32Array, Uint32Array, Int16Array, Uint16Array, Int8Array, Uint8Array,
  Uint8ClampedArray, BigInt64Array, BigUint64Array,
];
const BY_NAME = new Map(TYPED.map((C) => [C.name, C]));

export function isTypedArray(value: unknown): value is TypedArray {
  return ArrayBuffer.isView(value) && !(value instanceof DataView);
}

/** The header for `parts` and the binary messages that follow it. */
export function encodeParts(channel: Channel, tag: number, step: number, parts: readonly unknown[]): { header: Header; blobs: Uint8Array[] } {
  const kinds: (string | 0)[] = [];
  const inline: unknown[] = [];
  const blobs: Uint8Array[] = [];
  for (const part of parts) {
    if (isTypedArray(part)) {
      // A Buffer or other subclass travels as the standard class it extends.
      kinds.push(TYPED.find((C) => part instanceof C)!.name);
      inline.push(null);
      blobs.push(new Uint8Array(part.buffer, part.byteOffset, part.byteLength));
    } else {
      kinds.push(0);
      inline.push(part);
    }
  }
  return { header: [channel, tag, step, kinds, inline], blobs };
}

/** True when `value` has the shape of a {@link Header} (what a port accepts). */
export function isHeader(value: unknown): value is Header {
  if (!Array.isArray(value) || value.length !== 5) return false;
  const [channel, tag, step, kinds, inline] = value as unknown[];
  return (
    (channel === 0 || channel === 1) && Number.isInteger(tag) && Number.isInteger(step) &&
    Array.isArray(kinds) && Array.isArray(inline) && kinds.length === inline.length &&
    kinds.every((kind) => kind === 0 || (typeof kind === 'string' && BY_NAME.has(kind)))
  );
}

/** How many binary messages follow `header`. */
export function blobCount(header: Header): number {
  return header[3].reduce<number>((n, kind) => (kind === 0 ? n : n + 1), 0);
}

/**
 * The parts of a received message: inline values as they came, binary ones as typed arrays of
 * their class over the received bytes (copied only when the bytes are not aligned for it).
 * @throws InvalidArgumentError when a byte count is not a whole number of elements
 */
export function decodeParts(header: Header, blobs: readonly Uint8Array[]): unknown[] {
  let next = 0;
  return header[3].map((kind, i) => (kind === 0 ? header[4][i] : typedFrom(kind, blobs[next++]!)));
}

function typedFrom(kind: string, bytes: Uint8Array): TypedArray {
  const C = BY_NAME.get(kind)!;
  const size = (C as unknown as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT;
  if (bytes.byteLength % size !== 0) throw new InvalidArgumentError(`${bytes.byteLength} bytes are not a whole number of ${kind} elements`);
  const aligned = bytes.byteOffset % size === 0 ? bytes : bytes.slice();
  return new C(aligned.buffer, aligned.byteOffset, aligned.byteLength / size);
}
