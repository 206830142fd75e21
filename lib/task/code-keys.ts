import type { NodeId } from '../wire/address.js';
import type { ShippedCode } from './shipped-code.js';
import type { RunCode } from './worker-protocol.js';

/** Workers whose keys are remembered (the oldest worker's are forgotten: it gets the code again). */
const MAX_WORKERS = 4096;

/**
 * The owner's side of code keys (protocol.md §11.2; the worker's side is CallerCodes): a number
 * for each code object this owner runs, and for each worker the keys whose code it was sent.
 * Runs to one worker travel in order on one connection, so the run after the first may send the
 * key alone. A sync task on `() => 0` sent 222 bytes a run with the source and its hash, and a
 * real function's source travelled and was decoded every time.
 */
export class CodeKeys {
  private readonly keys = new WeakMap<ShippedCode, number>();
  private nextKey = 0;
  private readonly sentTo = new Map<NodeId, Set<number>>();
  /** Runs that carried their code. */
  shipped = 0;
  /** Workers that answered `ECODEUNKNOWN`, so that their code was shipped again. */
  reshipped = 0;

  /** `code` as it goes to `worker`: with this owner's key for it the first time, the key alone after that. */
  codeFor(code: ShippedCode, worker: NodeId): RunCode {
    let key = this.keys.get(code);
    if (key === undefined) {
      key = this.nextKey++;
      this.keys.set(code, key);
    }
    let sent = this.sentTo.get(worker);
    if (!sent) {
      sent = new Set();
      this.sentTo.set(worker, sent);
      if (this.sentTo.size > MAX_WORKERS) this.sentTo.delete(this.sentTo.keys().next().value as NodeId);
    }
    if (sent.has(key)) return key;
    sent.add(key);
    this.shipped++;
    return { ...code, key };
  }

  /** `worker` no longer holds some code it was sent (it answered `ECODEUNKNOWN`): send it all again. */
  forget(worker: NodeId): void {
    this.reshipped++;
    this.sentTo.delete(worker);
  }
}
