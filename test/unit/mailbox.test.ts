import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { MailboxClosedError, TimeoutError, ZerocosError } from '../../lib/common/errors.js';
import { Mailbox } from '../../lib/node/mailbox.js';
import { compileMatcher, type Predicate } from '../../lib/node/matcher.js';

const any = undefined;

/** Receives with a matcher (predicate or pattern) and no timeout. */
function take(mailbox: Mailbox, matcher?: Parameters<typeof compileMatcher>[0]): Promise<unknown> {
  return mailbox.receive(compileMatcher(matcher), undefined);
}

/** Settles-or-not probe: true once `promise` has settled (checked after pending microtasks run). */
function tracked<T>(promise: Promise<T>): { settled: () => boolean; promise: Promise<T> } {
  let done = false;
  const p = promise.then(
    (value) => {
      done = true;
      return value;
    },
    (error: unknown) => {
      done = true;
      throw error;
    },
  );
  // Keep an unobserved rejection from being reported before the test awaits it.
  p.catch(() => {});
  return { settled: () => done, promise: p };
}

async function flushMicrotasks(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

describe('compileMatcher', () => {
  it('returns undefined for no matcher and the function itself for a predicate', () => {
    expect(compileMatcher(undefined)).toBeUndefined();
    const predicate = (m: unknown) => m === 1;
    expect(compileMatcher(predicate)).toBe(predicate);
  });

  it('matches pattern objects by === on every key', () => {
    const match = compileMatcher({ type: 'pong', seq: 3 })!;
    expect(match({ type: 'pong', seq: 3 })).toBe(true);
    expect(match({ type: 'pong', seq: 3, extra: 'ignored' })).toBe(true);
    expect(match({ type: 'pong', seq: 4 })).toBe(false);
    expect(match({ type: 'pong', seq: '3' })).toBe(false);
    expect(match({ type: 'pong' })).toBe(false);
    expect(match('pong')).toBe(false);
    expect(match(null)).toBe(false);
    expect(match(undefined)).toBe(false);
  });

  it('calls function-valued pattern fields with the field value', () => {
    const match = compileMatcher({ type: 'pong', seq: (n: unknown) => typeof n === 'number' && n > 3 })!;
    expect(match({ type: 'pong', seq: 4, extra: 1 })).toBe(true);
    expect(match({ type: 'pong', seq: 3 })).toBe(false);
    expect(match({ type: 'ping', seq: 10 })).toBe(false);
    expect(match({ type: 'pong' })).toBe(false);
  });

  it('a string, number or boolean matcher matches an equal message only', () => {
    const done = compileMatcher('done')!;
    expect(done('done')).toBe(true);
    expect(done('Done')).toBe(false);
    expect(done({ type: 'done' })).toBe(false);
    const three = compileMatcher(3)!;
    expect(three(3)).toBe(true);
    expect(three('3')).toBe(false);
    const no = compileMatcher(false)!;
    expect(no(false)).toBe(true);
    expect(no(0)).toBe(false);
    expect(no(undefined)).toBe(false);
  });

  it('an empty pattern matches any object but no primitive', () => {
    const match = compileMatcher({})!;
    expect(match({})).toBe(true);
    expect(match([1])).toBe(true);
    expect(match(7)).toBe(false);
  });
});

describe('Mailbox', () => {
  it('delivers messages in FIFO order', async () => {
    const mailbox = new Mailbox(100);
    for (let i = 0; i < 10; i++) expect(mailbox.push(i)).toBe('delivered');
    expect(mailbox.size).toBe(10);
    const got: unknown[] = [];
    for (let i = 0; i < 10; i++) got.push(await take(mailbox));
    expect(got).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(mailbox.size).toBe(0);
  });

  it('keeps FIFO order across the internal compaction of a long queue', async () => {
    const mailbox = new Mailbox(10_000);
    for (let i = 0; i < 3000; i++) mailbox.push(i);
    for (let i = 0; i < 2500; i++) expect(await take(mailbox)).toBe(i);
    for (let i = 3000; i < 3010; i++) mailbox.push(i);
    const rest: unknown[] = [];
    while (mailbox.size > 0) rest.push(await take(mailbox));
    expect(rest).toEqual(Array.from({ length: 510 }, (_, i) => 2500 + i));
  });

  it('selective receive takes the oldest match and leaves the others queued in order', async () => {
    const mailbox = new Mailbox(100);
    mailbox.push({ type: 'a', n: 1 });
    mailbox.push({ type: 'b', n: 2 });
    mailbox.push({ type: 'a', n: 3 });
    mailbox.push({ type: 'b', n: 4 });
    mailbox.push({ type: 'c', n: 5 });

    expect(await take(mailbox, { type: 'b' })).toEqual({ type: 'b', n: 2 });
    expect(await take(mailbox, (m: { n: number }) => m.n === 5)).toEqual({ type: 'c', n: 5 });
    expect(mailbox.size).toBe(3);
    expect(await take(mailbox)).toEqual({ type: 'a', n: 1 });
    expect(await take(mailbox)).toEqual({ type: 'a', n: 3 });
    expect(await take(mailbox)).toEqual({ type: 'b', n: 4 });
    expect(mailbox.size).toBe(0);
  });

  it('selects a primitive message with a primitive matcher', async () => {
    const mailbox = new Mailbox(100);
    for (const m of ['tick', 'stop', 'tick', 1, true]) mailbox.push(m);
    expect(await take(mailbox, 'stop')).toBe('stop');
    expect(await take(mailbox, true)).toBe(true);
    expect(await take(mailbox, 1)).toBe(1);
    expect(mailbox.size).toBe(2);
  });

  it('selects with function-valued pattern fields', async () => {
    const mailbox = new Mailbox(100);
    for (let seq = 1; seq <= 5; seq++) mailbox.push({ type: 'pong', seq });
    expect(await take(mailbox, { type: 'pong', seq: (n: number) => n > 3 })).toEqual({ type: 'pong', seq: 4 });
    expect(await take(mailbox, { seq: (n: number) => n % 2 === 0 })).toEqual({ type: 'pong', seq: 2 });
    const rest: unknown[] = [];
    while (mailbox.size > 0) rest.push(((await take(mailbox)) as { seq: number }).seq);
    expect(rest).toEqual([1, 3, 5]);
  });

  it('a waiting receive is resolved by a later matching push; non-matching pushes are queued', async () => {
    const mailbox = new Mailbox(100);
    const waiting = tracked(take(mailbox, { type: 'wanted' }));
    await flushMicrotasks();
    expect(waiting.settled()).toBe(false);

    expect(mailbox.push({ type: 'other', n: 1 })).toBe('delivered');
    expect(mailbox.push({ type: 'other', n: 2 })).toBe('delivered');
    await flushMicrotasks();
    expect(waiting.settled()).toBe(false);
    expect(mailbox.size).toBe(2);

    expect(mailbox.push({ type: 'wanted', n: 3 })).toBe('delivered');
    expect(await waiting.promise).toEqual({ type: 'wanted', n: 3 });
    // The matched message went straight to the waiter, not through the queue.
    expect(mailbox.size).toBe(2);
    expect(await take(mailbox)).toEqual({ type: 'other', n: 1 });
    expect(await take(mailbox)).toEqual({ type: 'other', n: 2 });
  });

  it('a waiting receive with no matcher takes the next push', async () => {
    const mailbox = new Mailbox(100);
    const waiting = take(mailbox);
    mailbox.push('first');
    mailbox.push('second');
    expect(await waiting).toBe('first');
    expect(mailbox.size).toBe(1);
  });

  it('allows only one waiting receive at a time', async () => {
    const mailbox = new Mailbox(100);
    const first = take(mailbox);
    await expect(take(mailbox)).rejects.toThrow(/already waiting/);
    mailbox.push('x');
    expect(await first).toBe('x');
  });

  it('rejects a second concurrent receive with a typed ZerocosError', async () => {
    // errors.ts: "Every error zerocos raises is a ZerocosError"; this one is a plain Error.
    const mailbox = new Mailbox(100);
    const first = take(mailbox);
    const second = await take(mailbox).catch((e: unknown) => e);
    mailbox.push('x');
    expect(await first).toBe('x');
    expect(second).toBeInstanceOf(ZerocosError);
  });

  describe('timeouts', () => {
    beforeEach(() => {
      vi.useFakeTimers();
    });
    afterEach(() => {
      vi.useRealTimers();
    });

    it('rejects with the TimeoutError passed in once timeoutMs passes', async () => {
      const mailbox = new Mailbox(100);
      const timeout = new TimeoutError('receive timed out after 100 ms');
      const waiting = tracked(mailbox.receive(undefined, 100, timeout));
      vi.advanceTimersByTime(99);
      await flushMicrotasks();
      expect(waiting.settled()).toBe(false);
      vi.advanceTimersByTime(1);
      await expect(waiting.promise).rejects.toBe(timeout);
    });

    it('a timed-out receive no longer waits: the next push is queued and a new receive can start', async () => {
      const mailbox = new Mailbox(100);
      const timeout = new TimeoutError('t');
      const waiting = mailbox.receive(compileMatcher({ type: 'x' }), 50, timeout);
      const assertion = expect(waiting).rejects.toBe(timeout);
      vi.advanceTimersByTime(50);
      await assertion;
      expect(mailbox.push({ type: 'x' })).toBe('delivered');
      expect(mailbox.size).toBe(1);
      expect(await mailbox.receive(compileMatcher({ type: 'x' }), 50, timeout)).toEqual({ type: 'x' });
    });

    it('a push before the deadline wins and cancels the timer', async () => {
      const mailbox = new Mailbox(100);
      const timeout = new TimeoutError('t');
      const waiting = mailbox.receive(any, 100, timeout);
      vi.advanceTimersByTime(50);
      mailbox.push('in time');
      expect(await waiting).toBe('in time');
      expect(vi.getTimerCount()).toBe(0);
    });

    it('timeoutMs 0 polls: a queued match resolves, otherwise it rejects at once without waiting', async () => {
      const mailbox = new Mailbox(100);
      const timeout = new TimeoutError('poll');
      mailbox.push({ type: 'a' });
      expect(await mailbox.receive(compileMatcher({ type: 'a' }), 0, timeout)).toEqual({ type: 'a' });
      await expect(mailbox.receive(compileMatcher({ type: 'a' }), 0, timeout)).rejects.toBe(timeout);
      expect(vi.getTimerCount()).toBe(0);
      // The poll left no waiter behind: a later push is queued, and another receive may start.
      mailbox.push({ type: 'a', n: 2 });
      expect(mailbox.size).toBe(1);
      expect(await mailbox.receive(any, 0, timeout)).toEqual({ type: 'a', n: 2 });
    });
  });

  describe('capacity', () => {
    it("refuses a push beyond capacity with 'full'; a forced push still succeeds", async () => {
      const mailbox = new Mailbox(2);
      expect(mailbox.push(1)).toBe('delivered');
      expect(mailbox.push(2)).toBe('delivered');
      expect(mailbox.push(3)).toBe('full');
      expect(mailbox.size).toBe(2);
      expect(mailbox.push('system', true)).toBe('delivered');
      expect(mailbox.size).toBe(3);
      expect(mailbox.push(4)).toBe('full');
      const got: unknown[] = [];
      while (mailbox.size > 0) got.push(await take(mailbox));
      expect(got).toEqual([1, 2, 'system']);
      expect(mailbox.push(5)).toBe('delivered');
    });

    it('a push that a waiting receive accepts is delivered even when the queue is full', async () => {
      const mailbox = new Mailbox(1);
      mailbox.push('queued');
      const waiting = take(mailbox, { type: 'wanted' });
      expect(mailbox.push('not wanted')).toBe('full');
      expect(mailbox.push({ type: 'wanted' })).toBe('delivered');
      expect(await waiting).toEqual({ type: 'wanted' });
    });
  });

  describe('close', () => {
    it('rejects the waiting receive and every later receive with the close error', async () => {
      const mailbox = new Mailbox(100);
      const reason = new MailboxClosedError('killed');
      const waiting = take(mailbox);
      const assertion = expect(waiting).rejects.toBe(reason);
      mailbox.close(reason);
      await assertion;
      await expect(take(mailbox)).rejects.toBe(reason);
      await expect(mailbox.receive(any, 0, new TimeoutError('t'))).rejects.toBe(reason);
    });

    it("returns what was queued, refuses later pushes with 'closed', and is idempotent", async () => {
      const mailbox = new Mailbox(100);
      mailbox.push('a');
      mailbox.push('b');
      const first = new Error('first');
      expect(mailbox.close(first)).toEqual(['a', 'b']);
      expect(mailbox.size).toBe(0);
      expect(mailbox.push('c')).toBe('closed');
      expect(mailbox.push('d', true)).toBe('closed');
      expect(mailbox.close(new Error('second'))).toEqual([]);
      await expect(take(mailbox)).rejects.toBe(first);
    });

    it('cancels the timer of a waiting receive', async () => {
      vi.useFakeTimers();
      try {
        const mailbox = new Mailbox(100);
        const reason = new Error('closed');
        const waiting = mailbox.receive(any, 1000, new TimeoutError('t'));
        const assertion = expect(waiting).rejects.toBe(reason);
        mailbox.close(reason);
        expect(vi.getTimerCount()).toBe(0);
        await assertion;
      } finally {
        vi.useRealTimers();
      }
    });
  });

  describe('throwing matchers', () => {
    it('a matcher that throws while scanning the queue rejects the receive and leaves the queue alone', async () => {
      const mailbox = new Mailbox(100);
      mailbox.push('a');
      mailbox.push('b');
      const boom = new Error('matcher boom');
      const throwing: Predicate = () => {
        throw boom;
      };
      await expect(mailbox.receive(throwing, undefined)).rejects.toBe(boom);
      expect(mailbox.size).toBe(2);
      expect(await take(mailbox)).toBe('a');
    });

    it('a matcher that throws on a later push rejects the waiting receive; the message is kept', async () => {
      const mailbox = new Mailbox(100);
      const boom = new Error('matcher boom');
      const waiting = mailbox.receive((m) => {
        if (m === 'bad') throw boom;
        return m === 'good';
      }, undefined);
      const assertion = expect(waiting).rejects.toBe(boom);
      expect(mailbox.push('bad')).toBe('delivered');
      await assertion;
      expect(mailbox.size).toBe(1);
      // The waiter is gone: the next push queues behind 'bad' rather than resolving anything.
      mailbox.push('good');
      expect(mailbox.size).toBe(2);
      expect(await take(mailbox)).toBe('bad');
      expect(await take(mailbox)).toBe('good');
    });
  });

  describe('discard', () => {
    it('removes every queued message the predicate accepts and keeps the rest in order', async () => {
      const mailbox = new Mailbox(100);
      for (const m of [1, 2, 3, 4, 5, 6, 7, 8]) mailbox.push(m);
      mailbox.discard((m) => (m as number) % 2 === 0);
      expect(mailbox.size).toBe(4);
      const got: unknown[] = [];
      while (mailbox.size > 0) got.push(await take(mailbox));
      expect(got).toEqual([1, 3, 5, 7]);
    });

    it('removes a matching head, adjacent matches and a matching tail', async () => {
      const mailbox = new Mailbox(100);
      for (const m of ['x', 'x', 'keep1', 'x', 'x', 'keep2', 'x']) mailbox.push(m);
      mailbox.discard((m) => m === 'x');
      expect(mailbox.size).toBe(2);
      expect(await take(mailbox)).toBe('keep1');
      expect(await take(mailbox)).toBe('keep2');
      mailbox.discard(() => true);
      expect(mailbox.size).toBe(0);
    });
  });
});
