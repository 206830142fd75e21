import { addExtension, Packr, Unpackr } from 'msgpackr';
import { ProtocolError } from '../common/errors.js';

/**
 * Application extension types (docs/protocol.md §6, §11). Each is a standard msgpack ext value
 * whose data is itself one msgpack array, so any msgpack library can carry and decode it.
 */
export const EXT_OBJECT_REF = 20;
export const EXT_LOCATED_VALUE = 21;
export const EXT_REMOTE_FUNCTION = 22;
export const EXT_ACTOR_HANDLE = 23;

/** How a class travels as an extension: to and from the array that is its ext data. */
export interface ExtensionSpec<T> {
  type: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- msgpackr matches instances by constructor
  Class: abstract new (...args: any[]) => T;
  /** What a receiver must find in the array; a mismatch is a ProtocolError (`shape`). */
  shape: string;
  toArray(value: T): unknown[];
  /** Builds the value read (an instance, or what stands for one), or undefined when the array does not have `shape`. */
  fromArray(array: unknown[]): unknown;
}

// The same plain settings as the kernel's codec, so the inner value is what any language writes.
const packr = new Packr({ useRecords: false, moreTypes: false, encodeUndefinedAsNil: true });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, moreTypes: false, int64AsType: 'number' });

/**
 * Registers `spec` with msgpackr (globally: every Packr in the process, the kernel's included).
 * msgpackr's own `write`/`read` form writes a one-byte "tag" ext (`d4 <type> 00`) followed by the
 * value as a separate msgpack object, which no other msgpack library reads; `pack`/`unpack`
 * make the ext data the whole encoded array instead (protocol version 2).
 */
export function registerExtension<T>(spec: ExtensionSpec<T>): void {
  addExtension({
    Class: spec.Class,
    type: spec.type,
    pack: (value: T) => packr.pack(spec.toArray(value)),
    unpack(data: Uint8Array) {
      // The version 1 form leaves exactly the filler byte 00 as the ext data.
      if (data.length === 1 && data[0] === 0) {
        throw new ProtocolError('version', `extension ${spec.type} is in the protocol version 1 form (a tag followed by the value); version 2 puts the msgpack array inside the ext data`);
      }
      let array: unknown;
      try {
        array = unpackr.unpack(data);
      } catch (error) {
        throw new ProtocolError('decode', `extension ${spec.type}: data is not one msgpack value: ${(error as Error).message}`, { cause: error });
      }
      const value = Array.isArray(array) ? spec.fromArray(array) : undefined;
      if (value === undefined) throw new ProtocolError('shape', `extension ${spec.type}: data is not ${spec.shape}`);
      return value;
    },
  });
}
