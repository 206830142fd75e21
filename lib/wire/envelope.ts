import type { Kind } from './kinds.js';

/**
 * Envelopes as they travel: positional tuples (compact on the wire, cheap to build and read).
 * `to` and `from` are process ids local to the receiving and sending node respectively; the
 * node ids themselves travel once per batch. A `to` may also be a registered name.
 */
export type Target = number | string;

export type SendEnvelope = [kind: typeof Kind.Send, to: Target, from: number, payload: unknown];
export type CallEnvelope = [kind: typeof Kind.Call, to: Target, from: number, ref: number, payload: unknown];
export type ReplyEnvelope = [kind: typeof Kind.Reply, to: number, ref: number, status: 0 | 1, payload: unknown];
export type LinkEnvelope = [kind: typeof Kind.Link, to: number, from: number];
export type UnlinkEnvelope = [kind: typeof Kind.Unlink, to: number, from: number];
export type ExitEnvelope = [kind: typeof Kind.Exit, to: Target, from: number, reason: unknown, linked: 0 | 1];
export type MonitorEnvelope = [kind: typeof Kind.Monitor, to: Target, from: number, ref: number];
export type DemonitorEnvelope = [kind: typeof Kind.Demonitor, to: Target, from: number, ref: number];
export type DownEnvelope = [kind: typeof Kind.Down, to: number, from: Target, ref: number, reason: unknown];
export type DeadLetterEnvelope = [kind: typeof Kind.DeadLetter, to: number, target: Target, reason: string, payload: unknown];

export type Envelope =
  | SendEnvelope
  | CallEnvelope
  | ReplyEnvelope
  | LinkEnvelope
  | UnlinkEnvelope
  | ExitEnvelope
  | MonitorEnvelope
  | DemonitorEnvelope
  | DownEnvelope
  | DeadLetterEnvelope;

/** One decoded batch: who sent it, which incarnation it was meant for, and its envelopes in order. */
export interface DecodedBatch {
  fromNode: string;
  /** The receiver's node id as the sender believes it; "" when the sender does not know it yet (hello). */
  toNode: string;
  envelopes: Envelope[];
}
