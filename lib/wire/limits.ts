/** Default limits of the protocol (the header's constants are in header.ts); docs/protocol.md is the normative description. */

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
