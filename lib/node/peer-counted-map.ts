import type { NodeId } from '../wire/address.js';

/**
 * A map of entries that each belong to a node, which also counts the entries of each node, so
 * that a per-peer bound costs one lookup instead of a walk over the process's watchers or links.
 * Every way of changing it (set, delete, clear) keeps the counts right.
 */
export class PeerCountedMap<V extends { node: NodeId }> extends Map<string, V> {
  private readonly perNode = new Map<NodeId, number>();

  /** Entries that belong to `node`. */
  countFor(node: NodeId): number {
    return this.perNode.get(node) ?? 0;
  }

  override set(key: string, value: V): this {
    const old = super.get(key);
    if (old !== undefined) this.uncount(old.node);
    // Map's constructor calls set before this class's fields exist; it is only ever given none.
    this.perNode?.set(value.node, (this.perNode.get(value.node) ?? 0) + 1);
    return super.set(key, value);
  }

  override delete(key: string): boolean {
    const old = super.get(key);
    if (old === undefined) return false;
    this.uncount(old.node);
    return super.delete(key);
  }

  override clear(): void {
    this.perNode.clear();
    super.clear();
  }

  private uncount(node: NodeId): void {
    const left = (this.perNode.get(node) ?? 1) - 1;
    if (left > 0) this.perNode.set(node, left);
    else this.perNode.delete(node);
  }
}
