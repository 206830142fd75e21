import { describe, expect, it } from 'vitest';
import { CallDeadlines } from '../../lib/node/call-deadlines.js';

describe('CallDeadlines', () => {
  it('expires only calls still pending, oldest first, after compacting the ended ones away', async () => {
    const pending = new Set<number>();
    const expired: number[] = [];
    let allExpired!: () => void;
    const done = new Promise<void>((resolve) => (allExpired = resolve));
    const deadlines = new CallDeadlines(
      (ref) => pending.has(ref),
      (ref) => {
        pending.delete(ref);
        deadlines.ended(40);
        expired.push(ref);
        if (expired.length === 2) allExpired();
      },
    );
    // 5,000 calls that end at once (as answered calls do) around two that never end.
    for (let ref = 0; ref < 5002; ref++) {
      pending.add(ref);
      deadlines.add(ref, 40);
      if (ref !== 7 && ref !== 4000) {
        pending.delete(ref);
        deadlines.ended(40);
      }
    }
    const lane = (deadlines as unknown as { lanes: Map<number, { queue: { length: number }; live: number }> }).lanes.get(40)!;
    // Compaction kept the queue near the live count instead of 5,002 entries.
    expect(lane.queue.length).toBeLessThan(1100);
    expect(lane.live).toBe(2);
    await done;
    expect(expired).toEqual([7, 4000]);
    deadlines.clear();
  });
});
