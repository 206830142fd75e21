import { registerExtension } from './extension.js';

/** Typed arrays other than Uint8Array (docs/protocol.md §6): ext 24, data `[class name, bytes]`. */
export const EXT_TYPED_ARRAY = 24;

const TYPED_ARRAYS = {
  Int8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
} as const;

type TypedArrayName = keyof typeof TYPED_ARRAYS;

/**
 * Registers the typed arrays as an extension, so they arrive as the same class with the same
 * elements. Why: msgpackr with `moreTypes: false` (plain msgpack, which the protocol needs)
 * writes a Float64Array's *elements* into a bin sized for its *bytes*: `[1.5, 2]` arrived as 16
 * bytes of which 2 were the truncated elements and 14 were whatever memory followed. A
 * Uint8Array (and Buffer) stays plain msgpack bin.
 */
export function registerTypedArrays(): void {
  for (const [name, Class] of Object.entries(TYPED_ARRAYS) as [TypedArrayName, (typeof TYPED_ARRAYS)[TypedArrayName]][]) {
    registerExtension<InstanceType<typeof Class>>({
      type: EXT_TYPED_ARRAY,
      Class,
      shape: '[typed array class name, bytes]',
      toArray: (array) => [name, new Uint8Array(array.buffer, array.byteOffset, array.byteLength)],
      fromArray: ([kind, bytes]) => {
        const Of = typeof kind === 'string' && Object.hasOwn(TYPED_ARRAYS, kind) ? TYPED_ARRAYS[kind as TypedArrayName] : undefined;
        if (!Of || !(bytes instanceof Uint8Array) || bytes.byteLength % Of.BYTES_PER_ELEMENT !== 0) return undefined;
        // Copied into a buffer of its own: aligned for the element size, and not a view into the frame.
        const copy = new Uint8Array(bytes.byteLength);
        copy.set(bytes);
        return new Of(copy.buffer);
      },
    });
  }
}
