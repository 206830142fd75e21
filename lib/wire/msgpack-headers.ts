/**
 * Reading and writing the few msgpack headers the batch codec touches by hand (array and string
 * headers), so that a batch's node ids can be reused as bytes instead of coded again each time.
 */
/** The bytes of a msgpack array header for `count` elements. */
export function arrayHeaderLength(count: number): number {
  return count < 16 ? 1 : count < 0x10000 ? 3 : 5;
}

/** Writes a msgpack array header for `count` elements at the start of `bytes`. */
export function writeArrayHeader(bytes: Buffer, count: number): void {
  if (count < 16) bytes[0] = 0x90 | count;
  else if (count < 0x10000) {
    bytes[0] = 0xdc;
    bytes.writeUInt16BE(count, 1);
  } else {
    bytes[0] = 0xdd;
    bytes.writeUInt32BE(count, 1);
  }
}

/** A msgpack array header at the start of `bytes`: its length in bytes and its element count. */
export function arrayHeaderOf(bytes: Uint8Array): { length: number; count: number } | undefined {
  const first = bytes[0];
  if (first === undefined) return undefined;
  if (first >= 0x90 && first <= 0x9f) return { length: 1, count: first & 0x0f };
  if (first === 0xdc && bytes.length >= 3) return { length: 3, count: (bytes[1]! << 8) | bytes[2]! };
  if (first === 0xdd && bytes.length >= 5) return { length: 5, count: ((bytes[1]! << 24) | (bytes[2]! << 16) | (bytes[3]! << 8) | bytes[4]!) >>> 0 };
  return undefined;
}

/** Where the msgpack string that starts at `at` ends; undefined when no string starts there. */
export function stringEnd(bytes: Uint8Array, at: number | undefined): number | undefined {
  if (at === undefined || at >= bytes.length) return undefined;
  const first = bytes[at]!;
  let end: number;
  if (first >= 0xa0 && first <= 0xbf) end = at + 1 + (first & 0x1f);
  else if (first === 0xd9 && at + 1 < bytes.length) end = at + 2 + bytes[at + 1]!;
  else if (first === 0xda && at + 2 < bytes.length) end = at + 3 + ((bytes[at + 1]! << 8) | bytes[at + 2]!);
  else return undefined;
  return end <= bytes.length ? end : undefined;
}

/** Whether `bytes` holds `expected` at `at`. */
export function bytesAt(bytes: Uint8Array, at: number, expected: Buffer): boolean {
  return bytes.length >= at + expected.length && expected.compare(bytes, at, at + expected.length) === 0;
}
