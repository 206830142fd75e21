import { describe, expect, it } from 'vitest';
import { Job, RemoteError, TaskCancelledError, WorkerCrashedError, expandArgv, type JobOutcome, type JobRecord } from '../../lib/internal.js';

function outcome(fields: Partial<JobOutcome> = {}): JobOutcome {
  return { stdout: 'out\n', stderr: 'err\n', startTime: 1000, endTime: 1500, host: 'h1', worker: 'worker-0@127.0.0.1:1/abc', ...fields };
}

/** 'pending' if `promise` has not settled after a macrotask turn, else how it settled. */
async function state(promise: Promise<unknown>): Promise<string> {
  let seen = 'pending';
  promise.then(
    (value) => (seen = `resolved ${JSON.stringify(value)}`),
    (error: Error) => (seen = `rejected ${error.message}`),
  );
  await new Promise((resolve) => setImmediate(resolve));
  return seen;
}

describe('expandArgv', () => {
  it('replaces {0}, {1}... with the job arguments, also inside a part and more than once', () => {
    expect(expandArgv(['--n', '{0}', '--pair={1}-{0}'], [5, 'x'])).toEqual(['--n', '5', '--pair=x-5']);
  });

  it('appends the arguments to a template without placeholders', () => {
    expect(expandArgv(['-v', '--fast'], [1, 'a', true])).toEqual(['-v', '--fast', '1', 'a', 'true']);
    expect(expandArgv([], [3, 4])).toEqual(['3', '4']);
  });

  it('does not append the arguments once any placeholder is used, even ones out of range (empty then)', () => {
    expect(expandArgv(['{0}', '{3}'], [7, 8])).toEqual(['7', '']);
  });

  it('turns null and undefined arguments into empty strings, but keeps 0 and false', () => {
    expect(expandArgv(['{0}', '{1}', '{2}', '{3}'], [null, undefined, 0, false])).toEqual(['', '', '0', 'false']);
  });

  it('leaves the template untouched and text that is not a placeholder as it is', () => {
    const template = ['{x}', '{ 0}', '{0}'];
    expect(expandArgv(template, ['a'])).toEqual(['{x}', '{ 0}', 'a']);
    expect(template).toEqual(['{x}', '{ 0}', '{0}']);
  });
});

describe('Job', () => {
  it('starts created, not done, with its id, args and submit time', () => {
    const before = Date.now();
    const job = new Job(4, ['a', 1]);
    expect(job.status).toBe('created');
    expect(job.isDone).toBe(false);
    expect(job.id).toBe(4);
    expect(job.args).toEqual(['a', 1]);
    expect(job.submitTime).toBeGreaterThanOrEqual(before);
    expect(job.submitTime).toBeLessThanOrEqual(Date.now());
    expect(job.files).toEqual([]);
    expect([job.result, job.exception, job.endTime]).toEqual([undefined, undefined, undefined]);
  });

  it('keeps value() and done() pending until it ends', async () => {
    const job = new Job(1, []);
    job.status = 'running';
    const value = job.value();
    expect(await state(value)).toBe('pending');
    expect(await state(job.done())).toBe('pending');
    job.end('finished', { outcome: outcome({ result: 42 }) });
    expect(await state(value)).toBe('resolved 42');
    expect(await state(job.done())).toBe('resolved undefined');
  });

  it('is not a thenable: awaiting a job, or returning it from an async function, gives the job itself', async () => {
    const job = new Job(1, []);
    expect('then' in job).toBe(false);
    const returned = await (async () => job)();
    expect(returned).toBe(job);
    expect(await Promise.resolve(job)).toBe(job);
  });

  it('copies a finished outcome: result, output, times, host and worker; value() gives the result', async () => {
    const job = new Job(1, [6]);
    expect(job.end('finished', { outcome: outcome({ result: { n: 36 } }) })).toBe(true);
    expect(job.status).toBe('finished');
    expect(job.isDone).toBe(true);
    expect(job).toMatchObject({ result: { n: 36 }, stdout: 'out\n', stderr: 'err\n', startTime: 1000, endTime: 1500, host: 'h1', worker: 'worker-0@127.0.0.1:1/abc' });
    expect(job.exception).toBeUndefined();
    expect(await job.value()).toEqual({ n: 36 });
  });

  it('resolves falsy results as they are (0, undefined)', async () => {
    const zero = new Job(1, []);
    zero.end('finished', { outcome: outcome({ result: 0 }) });
    expect(await zero.value()).toBe(0);
    const nothing = new Job(2, []);
    nothing.end('finished', { outcome: outcome() });
    expect(await nothing.value()).toBeUndefined();
  });

  it('rebuilds an outcome exception as a RemoteError keeping the remote stack; value() rejects with it, done() does not', async () => {
    const job = new Job(2, []);
    job.end('terminated', {
      outcome: outcome({ exception: { name: 'RangeError', message: 'bad input 7', stack: 'RangeError: bad input 7\n    at explode (zerocos-fn/explode/x:1:7)', nodeId: 'w1' } }),
    });
    expect(job.status).toBe('terminated');
    expect(job.result).toBeUndefined();
    expect(job.exception).toBeInstanceOf(RemoteError);
    const error = job.exception as RemoteError;
    expect(error.remoteName).toBe('RangeError');
    expect(error.message).toBe('bad input 7');
    expect(error.remoteStack).toContain('explode');
    expect(error.nodeId).toBe('w1');
    expect(job.stdout).toBe('out\n');
    await expect(job.value()).rejects.toBe(error);
    await expect(job.done()).resolves.toBeUndefined();
  });

  it('rejects with the given exception for cancelled and abandoned jobs, and sets endTime itself', async () => {
    const before = Date.now();
    const cancelled = new Job(3, []);
    const reason = new TaskCancelledError('task 3 was cancelled');
    cancelled.end('cancelled', { exception: reason });
    await expect(cancelled.value()).rejects.toBe(reason);
    expect(cancelled.endTime).toBeGreaterThanOrEqual(before);

    const abandoned = new Job(4, []);
    const lost = new WorkerCrashedError('task 4 lost its worker 1 time(s)');
    abandoned.end('abandoned', { exception: lost });
    await expect(abandoned.value()).rejects.toBe(lost);
    await expect(abandoned.done()).resolves.toBeUndefined();
  });

  it('rejects with an Error naming the job and its status when it ended without an exception', async () => {
    const job = new Job(9, []);
    job.end('abandoned');
    await expect(job.value()).rejects.toThrow('job 9 abandoned');
  });

  it('keeps the first end: later calls return false and change nothing', async () => {
    const job = new Job(5, []);
    expect(job.end('finished', { outcome: outcome({ result: 'first' }) })).toBe(true);
    const endTime = job.endTime;
    expect(job.end('cancelled', { exception: new TaskCancelledError('late') })).toBe(false);
    expect(job.end('terminated', { outcome: outcome({ exception: { name: 'Error', message: 'late' }, endTime: 9999, stdout: 'late' }) })).toBe(false);
    expect(job).toMatchObject({ status: 'finished', result: 'first', stdout: 'out\n', endTime });
    expect(job.exception).toBeUndefined();
    expect(await job.value()).toBe('first');
  });

  it('gives every caller of value() the same result, whenever they ask', async () => {
    const a = new Job<number>(1, []);
    const b = new Job<number>(2, []);
    const both = Promise.all([a.value(), b.value()]);
    const doubled = a.value().then((value) => value * 2);
    b.end('finished', { outcome: outcome({ result: 2 }) });
    a.end('finished', { outcome: outcome({ result: 1 }) });
    expect(await both).toEqual([1, 2]);
    expect(await doubled).toBe(2);
    expect(await a.value()).toBe(1);
  });

  describe('fromRecord', () => {
    const record = (fields: Partial<JobOutcome>): JobRecord => ({ cluster: 'jc-1', job: 12, args: [3, 'x'], outcome: outcome(fields) });

    it('rebuilds a finished job with its id, args, result and output', async () => {
      const job = Job.fromRecord(record({ result: 9 }));
      expect(job).toMatchObject({ id: 12, args: [3, 'x'], status: 'finished', result: 9, stdout: 'out\n', stderr: 'err\n', host: 'h1', startTime: 1000, endTime: 1500 });
      expect(await job.value()).toBe(9);
    });

    it('rebuilds a job that threw as terminated with a RemoteError', async () => {
      const job = Job.fromRecord(record({ exception: { name: 'TypeError', message: 'nope', stack: 'TypeError: nope\n    at compute' } }));
      expect(job.status).toBe('terminated');
      expect(job.exception).toBeInstanceOf(RemoteError);
      expect((job.exception as RemoteError).remoteName).toBe('TypeError');
      expect((job.exception as RemoteError).remoteStack).toContain('compute');
      await expect(job.value()).rejects.toThrow('nope');
    });
  });
});
