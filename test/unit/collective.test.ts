import { describe, expect, it } from 'vitest';
import { RankFailedError } from '../../lib/index.js';
import { decodeParts, encodeParts, isHeader } from '../../lib/collective/frames.js';
import { ANY_SOURCE, ANY_TAG, Inbox } from '../../lib/collective/inbox.js';

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
    expect(isHeader([2, 1, 0, [], []])).toBe(false);
    expect(isHeader('hello')).toBe(false);
  });
});

describe('collective inbox', () => {
  const p2p = (source: number, tag: number, value: unknown) => ({ source, channel: 0 as const, tag, step: 0, parts: [value] });
  const want = (source: number, tag: number) => ({ source, channel: 0 as const, tag, step: 0 });

  it('takes the oldest match per source and tag; ANY_SOURCE takes the oldest arrival', async () => {
    const inbox = new Inbox(0, 3);
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
    const inbox = new Inbox(0, 3);
    inbox.put(p2p(1, 0, 'before'));
    const collective = inbox.take({ source: 2, channel: 1, tag: 0, step: 0 });
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
    const inbox = new Inbox(0, 3);
    const fromTwo = inbox.take({ source: 2, channel: 1, tag: 0, step: 0 });
    const fromOne = inbox.take({ source: 1, channel: 1, tag: 0, step: 0 });
    inbox.lost(1, 'normal', false);
    await expect(fromOne).rejects.toMatchObject({ rank: 1, reason: 'normal' });
    inbox.put({ source: 2, channel: 1, tag: 0, step: 0, parts: [42] });
    expect((await fromTwo).parts).toEqual([42]);
  });
});
