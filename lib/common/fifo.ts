/**
 * An array-backed FIFO with O(1) amortised shift: `Array.prototype.shift` is O(n) once an
 * array leaves V8's fast path, which turns a backlog of a million messages into O(n²).
 */
export class Fifo<T> {
  private items: (T | undefined)[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  /** The item at `index` (0 = oldest) without removing it. */
  at(index: number): T | undefined {
    return this.items[this.head + index];
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined;
    // Compact once the dead prefix dominates, so memory follows the live length.
    if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  /** Removes and returns the item at `index` (0 = oldest); O(n) unless it is the oldest. */
  removeAt(index: number): T | undefined {
    if (index === 0) return this.shift();
    const [item] = this.items.splice(this.head + index, 1);
    return item;
  }

  /** Removes every item and returns them oldest first. */
  drain(): T[] {
    const rest = this.items.slice(this.head) as T[];
    this.items = [];
    this.head = 0;
    return rest;
  }
}
