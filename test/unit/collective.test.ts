import { describe, expect, it } from 'vitest';
import { RankFailedError } from '../../lib/index.js';
import { decodeParts, encodeParts, isHeader } from '../../lib/collective/frames.js';
import { ANY_SOURCE, ANY_TAG, Inbox } from '../../lib/collective/inbox.js';
import { agreeOnLost } from '../../lib/collective/agreement.js';

describe('collective frames', () => {
  it('sends typed arrays, top-level and nested, as binary parts and rebuilds them with their class', () => {
    const f = new Float64Array([1.5, -2]);
    const nested = { a: [1, new Int16Array([7, -7])], b: 'x' };
    const { header, blobs } = encodeParts(0, 3, 0, [f, nested, 'plain']);
    expect(isHeader(header)).toBe(true);
    expect(header[3]).toEqual(['Float64Array', 'Int16Array']);
    expect(blobs.map((b) => b.byteLength)).toEqual([16, 4]);
    // The sender's value is left as it was.
    expect(nested.a[1]).toBeInstanceOf(Int16Array);
    const [g, n, p] = decodeParts(header, blobs.map((b) => Buffer.from(b)));
    expect(g).toBeInstanceOf(Float64Array);
    expect(Array.from(g as Float64Array)).toEqual([1.5, -2]);
    expect(n).toEqual({ a: [1, new Int16Array([7, -7])], b: 'x' });
    expect(p).toBe('plain');
  });

  it('copies bytes that are not aligned for their class, and refuses a byte count that is not whole elements', () => {
    const { header } = encodeParts(0, 0, 0, [new Float64Array([3.25])]);
    const unaligned = new Uint8Array(new ArrayBuffer(17), 1, 16);
    unaligned.set(new Uint8Array(new Float64Array([3.25, 4]).buffer));
    header[3] = ['Float64Array'];
    const [x] = decodeParts(header, [unaligned]);
    expect(Array.from(x as Float64Array)).toEqual([3.25, 4]);
    expect(() => decodeParts(header, [new Uint8Array(7)])).toThrow(/whole number/);
  });

  it('refuses headers of the wrong shape', () => {
    expect(isHeader([0, 1, 0, ['NotAnArray'], [1]])).toBe(false);
    expect(isHeader([3, 1, 0, [], []])).toBe(false);
    // A communicator's context is a non-empty string after the parts.
    expect(isHeader([2, 1, 0, [], [], '/0.1'])).toBe(true);
    expect(isHeader([0, 1, 0, [], [], ''])).toBe(false);
    expect(isHeader([0, 1, 0, [], [], 7])).toBe(false);
    expect(isHeader([0, 1, 0, [], [], 'x'.repeat(10_000)])).toBe(false);
    expect(isHeader('hello')).toBe(false);
  });
});

describe('collective inbox', () => {
  const scope = { context: '', ranks: new Map([0, 1, 2].map((r) => [r, r])) };
  const p2p = (source: number, tag: number, value: unknown) => ({ source, context: '', channel: 0 as const, tag, step: 0, parts: [value] });
  const want = (source: number, tag: number) => ({ scope, source, channel: 0 as const, tag, step: 0 });

  it('takes the oldest match per source and tag; ANY_SOURCE takes the oldest arrival', async () => {
    const inbox = new Inbox(0);
    inbox.put(p2p(1, 5, 'a'));
    inbox.put(p2p(2, 5, 'b'));
    inbox.put(p2p(1, 6, 'c'));
    inbox.put(p2p(1, 5, 'd'));
    expect((await inbox.take(want(1, 6))).parts).toEqual(['c']);
    expect((await inbox.take(want(ANY_SOURCE, 5))).parts).toEqual(['a']);
    expect((await inbox.take(want(1, ANY_TAG))).parts).toEqual(['d']);
    const waiting = inbox.take(want(2, 9));
    inbox.put(p2p(2, 9, 'e'));
    expect((await waiting).parts).toEqual(['e']);
  });

  it('delivers what a lost rank sent before failing receives from it; an abnormal loss fails waiting collective steps', async () => {
    const inbox = new Inbox(0);
    inbox.put(p2p(1, 0, 'before'));
    const collective = inbox.take({ scope, source: 2, channel: 1, tag: 0, step: 0 });
    inbox.lost(1, 'killed', true);
    expect((await inbox.take(want(1, 0))).parts).toEqual(['before']);
    await expect(inbox.take(want(1, 0))).rejects.toMatchObject({ name: 'RankFailedError', rank: 1, reason: 'killed' });
    await expect(collective).rejects.toBeInstanceOf(RankFailedError);
    // Rank 2 is still there: a new point-to-point receive from it waits and gets its message.
    const later = inbox.take(want(ANY_SOURCE, ANY_TAG));
    inbox.put(p2p(2, 1, 'still here'));
    expect((await later).parts).toEqual(['still here']);
  });

  it('lets a normal exit fail only receives that name that rank', async () => {
    const inbox = new Inbox(0);
    const fromTwo = inbox.take({ scope, source: 2, channel: 1, tag: 0, step: 0 });
    const fromOne = inbox.take({ scope, source: 1, channel: 1, tag: 0, step: 0 });
    inbox.lost(1, 'normal', false);
    await expect(fromOne).rejects.toMatchObject({ rank: 1, reason: 'normal' });
    inbox.put({ source: 2, context: '', channel: 1, tag: 0, step: 0, parts: [42] });
    expect((await fromTwo).parts).toEqual([42]);
  });
});

describe('collective inbox contexts', () => {
  it("keeps communicators apart and names ranks as each communicator numbers them", async () => {
    const world = { context: '', ranks: new Map([0, 1, 2, 3].map((r) => [r, r])) };
    // A sub-communicator of group ranks 3 and 0, in that order.
    const sub = { context: '/0.1', ranks: new Map([[3, 0], [0, 1]]) };
    const inbox = new Inbox(0);
    inbox.put({ source: 3, context: '', channel: 0, tag: 5, step: 0, parts: ['world'] });
    inbox.put({ source: 3, context: '/0.1', channel: 0, tag: 5, step: 0, parts: ['sub'] });
    expect((await inbox.take({ scope: sub, source: ANY_SOURCE, channel: 0, tag: ANY_TAG, step: 0 })).parts).toEqual(['sub']);
    expect((await inbox.take({ scope: world, source: 3, channel: 0, tag: 5, step: 0 })).parts).toEqual(['world']);
    const subCollective = inbox.take({ scope: sub, source: 3, channel: 1, tag: 0, step: 0 });
    const subAny = inbox.take({ scope: sub, source: ANY_SOURCE, channel: 0, tag: ANY_TAG, step: 0 });
    // Group rank 2 is not a member of the sub-communicator: its loss leaves it alone.
    inbox.lost(2, 'killed', true);
    expect(inbox.firstFailure(sub)).toBeUndefined();
    expect(inbox.firstFailure(world)).toMatchObject({ rank: 2 });
    inbox.lost(3, 'killed', true);
    await expect(subCollective).rejects.toMatchObject({ name: 'RankFailedError', rank: 0 });
    await expect(subAny).rejects.toMatchObject({ rank: 0 });
    expect(inbox.firstFailure(sub)).toMatchObject({ rank: 0, reason: 'killed' });
  });
});

describe('shrink agreement (flooding consensus)', () => {
  /**
   * `n` members in this process, each with its own inbox; a message is delivered a macrotask
   * later, so members interleave. `crashAfter[r]` = k: member r sends k messages, then dies; the
   * others see its loss after its last message, each at a different time.
   */
  function simulate(n: number, options: { lostBefore?: Record<number, number[]>; crashAfter?: Record<number, number>; absent?: number[] } = {}) {
    const inboxes = Array.from({ length: n }, (_, r) => new Inbox(r));
    const ranks = new Map(Array.from({ length: n }, (_, r) => [r, r]));
    const scope = (instance: number) => ({ context: `${instance}`, ranks });
    const dead = new Set<number>();
    const sends = new Array<number>(n).fill(0);
    const kill = (r: number) => {
      dead.add(r);
      inboxes.forEach((inbox, other) => other !== r && setTimeout(() => inbox.lost(r, 'killed', true), 1 + other * 3));
    };
    for (const r of options.absent ?? []) kill(r);
    for (const [r, ranks] of Object.entries(options.lostBefore ?? {})) for (const lost of ranks) inboxes[Number(r)]!.lost(lost, 'killed', true);
    const members = Array.from({ length: n }, (_, r) => r);
    const run = (me: number) =>
      agreeOnLost({
        me,
        members,
        isLost: (r) => inboxes[me]!.isLost(r),
        send: (instance, dest, tag, value) => {
          if (dead.has(me)) return;
          if (++sends[me]! > (options.crashAfter?.[me] ?? Infinity)) return kill(me);
          setImmediate(() => inboxes[dest]!.put({ source: me, context: `${instance}`, channel: 2, tag, step: 0, parts: [value] }));
        },
        take: async (instance, source, tag) => (await inboxes[me]!.take({ scope: scope(instance), source, channel: 2, tag, step: 0 })).parts[0],
        takeAny: async (instance, tag) => {
          const arrival = await inboxes[me]!.take({ scope: scope(instance), source: ANY_SOURCE, channel: 2, tag, step: 0 });
          return { source: arrival.source, value: arrival.parts[0] };
        },
        close: (instance) => inboxes[me]!.close(`${instance}`),
      });
    const absent = new Set(options.absent);
    const survivors = members.filter((r) => !absent.has(r));
    return { dead, outcomes: survivors.map((r) => run(r).then((set) => ({ r, lost: [...set].sort() }))) };
  }

  it('agrees on every loss when the survivors saw different ones at the start', async () => {
    const { outcomes } = simulate(5, { absent: [1, 3], lostBefore: { 0: [1], 4: [3] } });
    const decided = await Promise.all(outcomes);
    expect(decided.map((d) => d.lost)).toEqual([[1, 3], [1, 3], [1, 3]]);
  });

  it('agrees with no loss at all, in one round', async () => {
    const decided = await Promise.all(simulate(3).outcomes);
    expect(decided.map((d) => d.lost)).toEqual([[], [], []]);
  });

  for (const k of [1, 3, 5, 7, 9]) {
    it(`gives every survivor the same set when a member dies after ${k} of its messages`, async () => {
      const { outcomes } = simulate(5, { absent: [4], crashAfter: { 0: k } });
      // Rank 0 dies in the middle: what it decided, if anything, does not count.
      const survivors = await Promise.all(outcomes.slice(1));
      // Every member that did not die decided, and all decided alike; rank 4, lost before anyone
      // saw it, is in it (rank 0 too unless it died during the last instance).
      expect(survivors.map((s) => s.r)).toEqual([1, 2, 3]);
      expect(new Set(survivors.map((s) => JSON.stringify(s.lost))).size).toBe(1);
      expect(survivors[0]!.lost).toContain(4);
    });
  }
});
