import { randomInt } from 'node:crypto';

/**
 * Routing ids, and what they say about a connection to this node's ROUTER.
 *
 * libzmq gives a connection whose peer set no routing id a 5-byte one: 0 then a uint32. A
 * zerocos DEALER sets its own, `zc` and 10 base-36 digits (~52 random bits): that says its node
 * reads what comes back on this connection, so that the ROUTER may answer on it (docs/protocol.md
 * §3). A peer that sets none (an older node, another implementation) is answered on a DEALER
 * of our own, as before.
 */

const DIGITS = '0123456789abcdefghijklmnopqrstuvwxyz';
const ID_DIGITS = 10;
/** Numbers of connections whose peer reads answers start here (libzmq's own ids are below). */
const READS_ANSWERS = 2 ** 32;

/** A fresh routing id for a DEALER of this node. */
export function dealerRoutingId(): string {
  let id = 'zc';
  for (let i = 0; i < ID_DIGITS; i++) id += DIGITS[randomInt(DIGITS.length)];
  return id;
}

/**
 * A number for the connection a ROUTER's routing-id frame names: libzmq's own ids as their
 * uint32, ours as 2^32 + their digits read in base 36 (< 2^53, so exact); -1 for any other id.
 */
export function connectionOf(routingId: Uint8Array | undefined): number {
  if (routingId === undefined) return -1;
  if (routingId.length === 5 && routingId[0] === 0) {
    return ((routingId[1]! << 24) | (routingId[2]! << 16) | (routingId[3]! << 8) | routingId[4]!) >>> 0;
  }
  if (routingId.length !== 2 + ID_DIGITS || routingId[0] !== 0x7a || routingId[1] !== 0x63) return -1; // "zc"
  let value = 0;
  for (let i = 2; i < routingId.length; i++) {
    const byte = routingId[i]!;
    const digit = byte >= 0x30 && byte <= 0x39 ? byte - 0x30 : byte >= 0x61 && byte <= 0x7a ? byte - 0x61 + 10 : -1;
    if (digit < 0) return -1;
    value = value * 36 + digit;
  }
  return READS_ANSWERS + value;
}

/** Whether the peer on `connection` reads answers there (its DEALER set a zerocos routing id). */
export function readsAnswers(connection: number): boolean {
  return connection >= READS_ANSWERS;
}
