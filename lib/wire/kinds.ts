/**
 * The envelope kind catalogue. An envelope is a msgpack array whose first element is its kind;
 * the positions of the other fields are fixed per kind (see docs/protocol.md).
 */
export const Kind = {
  /** `[1, to, from, payload]` — a message for a process's mailbox. */
  Send: 1,
  /** `[2, to, from, ref, payload]` — a request; also monitors `to` on behalf of the caller until it replies. */
  Call: 2,
  /** `[3, to, ref, status, payload]` — the answer to a Call; status 0 = value, 1 = error info. */
  Reply: 3,
  /** `[4, to, from]` — make a bidirectional link (`to` is a pid id: links take pids, not names). */
  Link: 4,
  /** `[5, to, from]` — remove a link. */
  Unlink: 5,
  /** `[6, to, from, reason, linked]` — an exit signal; linked = 1 when it travels along a link. */
  Exit: 6,
  /** `[7, to, from, ref]` — start monitoring `to`. */
  Monitor: 7,
  /** `[8, to, from, ref]` — stop monitoring. */
  Demonitor: 8,
  /** `[9, to, from, ref, reason]` — the monitored process `from` has exited; `to` is the watcher. */
  Down: 9,
  /** `[10, to, target, reason, payload]` — a message from `to` could not be delivered to `target`. */
  DeadLetter: 10,
} as const;

export type Kind = (typeof Kind)[keyof typeof Kind];

/**
 * Set on the kind byte when the envelope's payload travels as the next blob frame instead of
 * inline (its payload slot then holds nil). Binary payloads skip the codec this way.
 */
export const BLOB_FLAG = 0x40;

/** The largest valid kind value (without the blob flag). */
export const MAX_KIND = Kind.DeadLetter;

/** The index of the payload field in envelopes that carry one (they may set BLOB_FLAG). */
export const PAYLOAD_INDEX = {
  [Kind.Send]: 3,
  [Kind.Call]: 4,
  [Kind.Reply]: 4,
  [Kind.DeadLetter]: 4,
} as const satisfies Partial<Record<Kind, number>>;

/** Reply status values. */
export const ReplyStatus = { Ok: 0, Error: 1 } as const;
