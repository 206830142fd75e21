/**
 * The heartbeat of `zerocos.membership` (docs/protocol.md §11.1): its type, and one place that
 * formats and one that parses it, as lib/wire does for the kernel.
 */
import type { NodeId } from '../wire/address.js';

/**
 * A heartbeat, as sent between membership processes. `members` only when the sender's view
 * changed. The sender is the node of the batch it arrived in (a `from` field, sent by older
 * nodes, is ignored).
 */
export interface Heartbeat {
  hb: number;
  /** The sender's clock when it sent this (performance.now(), ms): echoed back for the round trip. */
  at?: number;
  /** The `at` of the last heartbeat the sender received from the receiver, and how long it held it (ms). */
  echo?: [number, number];
  /** The sender's host facts and offer (see DaemonView), checked where they are read. */
  info: unknown;
  members?: NodeId[];
  leaving?: true;
}

export function formatHeartbeat(
  seq: number,
  info: unknown,
  extra: { at?: number | undefined; echo?: [number, number] | undefined; members?: NodeId[] | undefined; leaving?: boolean },
): Heartbeat {
  const heartbeat: Heartbeat = { hb: seq, info };
  if (extra.at !== undefined) heartbeat.at = extra.at;
  if (extra.echo) heartbeat.echo = extra.echo;
  if (extra.leaving) heartbeat.leaving = true;
  if (extra.members) heartbeat.members = extra.members;
  return heartbeat;
}

const isFiniteNumber = (value: unknown): value is number => typeof value === 'number' && Number.isFinite(value);

/**
 * The heartbeat when `message` is a well-formed one, else undefined. Every optional field must
 * have its type when present: a member list that is not an array of strings would otherwise
 * stop the membership process that walks it.
 */
export function parseHeartbeat(message: unknown): Heartbeat | undefined {
  if (typeof message !== 'object' || message === null || Array.isArray(message)) return undefined;
  const { hb, at, echo, members, leaving } = message as Record<string, unknown>;
  if (!isFiniteNumber(hb)) return undefined;
  if (at !== undefined && !isFiniteNumber(at)) return undefined;
  if (echo !== undefined && !(Array.isArray(echo) && echo.length === 2 && isFiniteNumber(echo[0]) && isFiniteNumber(echo[1]))) return undefined;
  if (members !== undefined && !(Array.isArray(members) && members.every((m) => typeof m === 'string'))) return undefined;
  if (leaving !== undefined && leaving !== true) return undefined;
  return message as Heartbeat;
}
