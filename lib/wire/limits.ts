/** Protocol constants and default limits; docs/protocol.md is the normative description. */

/** The two magic bytes that open every header frame: "ZC". */
export const MAGIC_0 = 0x5a;
export const MAGIC_1 = 0x43;

/** The protocol version this code speaks. A frame of another version is dropped and counted. */
export const PROTOCOL_VERSION = 2;

/** Header frame type: a batch of envelopes. Other values are reserved. */
export const FRAME_TYPE_BATCH = 1;

export const HEADER_BYTES = 4;

/** Default largest encoded envelope (or blob) accepted, in bytes. */
export const DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

/**
 * A batch is closed once it holds this many encoded bytes (a lone message may be larger, up to
 * `maxMessageBytes`). 256 KiB is Moleculer's chunk size: big enough to amortise the per-frame
 * cost, small enough that one batch does not hold control traffic back for long.
 */
export const DEFAULT_MAX_BATCH_BYTES = 256 * 1024;

/** A batch is closed once it holds this many envelopes. */
export const DEFAULT_MAX_BATCH_ENVELOPES = 1024;
