/**
 * The header frame that opens every batch on the wire: magic, version, frame type
 * (docs/protocol.md is the normative description). Limits are in limits.ts.
 */

/** The two magic bytes that open every header frame: "ZC". */
export const MAGIC_0 = 0x5a;
export const MAGIC_1 = 0x43;

/** The protocol version this code speaks. A frame of another version is dropped and counted. */
export const PROTOCOL_VERSION = 2;

/** Header frame type: a batch of envelopes. Other values are reserved. */
export const FRAME_TYPE_BATCH = 1;

/** The header frame's length: magic (2), version, frame type. */
export const HEADER_BYTES = 4;
