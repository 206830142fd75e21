/**
 * The reducer a key goes to: FNV-1a over the key's text, modulo the partition count. Stable
 * across processes and runs (never JavaScript object identity), so a re-run map task sends
 * every key where the first run did.
 */
export function partitionOf(key: unknown, partitions: number): number {
  const text = typeof key === 'string' ? key : typeof key === 'number' ? `#${key}` : JSON.stringify(key) ?? String(key);
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % partitions;
}
