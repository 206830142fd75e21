import type { NodeId } from '../wire/address.js';
import type { ShippedCode } from './shipped-code.js';

/** Keys kept per caller (a caller ships this many distinct functions before the oldest is dropped). */
const MAX_KEYS_PER_CALLER = 1000;
/** Callers kept (the oldest caller's keys are dropped beyond it; it ships its code again). */
const MAX_CALLERS = 256;

/**
 * A worker's memory of the code each caller shipped under a key of the caller's own, so that a
 * caller sends a function's source once per worker and then the key alone (Ray exports a
 * function once too). Keys are per caller (the batch's sender, which the transport vouches
 * for): no caller can name another's code. Forgetting is always safe: a run naming a key not
 * held fails with `ECODEUNKNOWN` and its caller ships the code again.
 */
export class CallerCodes {
  private readonly byCaller = new Map<NodeId, Map<number, ShippedCode>>();

  remember(caller: NodeId, key: number, code: ShippedCode): void {
    let codes = this.byCaller.get(caller);
    if (!codes) {
      codes = new Map();
      this.byCaller.set(caller, codes);
      if (this.byCaller.size > MAX_CALLERS) this.byCaller.delete(this.byCaller.keys().next().value as NodeId);
    }
    codes.set(key, code);
    if (codes.size > MAX_KEYS_PER_CALLER) codes.delete(codes.keys().next().value as number);
  }

  recall(caller: NodeId, key: number): ShippedCode | undefined {
    return this.byCaller.get(caller)?.get(key);
  }

  /** The caller was lost: its keys go with it (a new incarnation is a new caller). */
  forget(caller: NodeId): void {
    this.byCaller.delete(caller);
  }

  /** Callers held, and keys over all of them. */
  get size(): { callers: number; keys: number } {
    let keys = 0;
    for (const codes of this.byCaller.values()) keys += codes.size;
    return { callers: this.byCaller.size, keys };
  }
}
