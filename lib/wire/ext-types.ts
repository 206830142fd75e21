import { addExtension } from 'msgpackr';

/**
 * The msgpack extension types a zerocos node accepts (docs/protocol.md §6, §11): the standard
 * timestamp (-1, 0xff) and the four application types of the task and actor layers (20-23).
 */
export const DOCUMENTED_EXTENSION_TYPES: readonly number[] = [0xff, 20, 21, 22, 23];

/**
 * Makes msgpackr refuse every other extension type when it decodes. msgpackr has built-in
 * decoders for its own types (BigInt 0x42, Error 0x65, structured-clone references 0x69/0x70,
 * Set 0x73, typed arrays, RegExp 0x78, ...), which a peer could otherwise use to put objects
 * the protocol does not define into a mailbox. Our encoder never writes them (`moreTypes:
 * false`), so only foreign frames are affected: they fail to decode, and the transport drops
 * and counts them as `decode`. msgpackr's extension table is global to the process, like the
 * application types registered with it, so this runs once when the codec is loaded.
 */
export function refuseUndocumentedExtensions(): void {
  for (let type = 0; type < 256; type++) {
    if (DOCUMENTED_EXTENSION_TYPES.includes(type)) continue;
    addExtension({
      type,
      unpack: () => {
        throw new Error(`extension type ${type} is not part of the zerocos protocol`);
      },
    } as Parameters<typeof addExtension>[0]);
  }
}
