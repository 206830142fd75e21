import { Worker } from 'node:worker_threads';

/**
 * The benchmarks' floor for "run a trivial function elsewhere and get the answer" with nothing
 * but Node: a pool of worker_threads answering postMessage requests, round robin.
 * worker_threads rather than child processes with IPC: a MessagePort moves structured clones
 * in memory with no syscall per message, so this is the cheapest way Node offers to run code
 * off the calling thread: a floor, not a rival design.
 */
export class ThreadPool {
  private nextId = 0;
  private readonly pending = new Map<number, (value: unknown) => void>();

  private constructor(private readonly threads: Worker[]) {
    for (const thread of threads) {
      thread.on('message', ([id, value]: [number, unknown]) => {
        const resolve = this.pending.get(id)!;
        this.pending.delete(id);
        resolve(value);
      });
    }
  }

  /**
   * Starts `size` threads, each answering a request's argument with `fn(argument)`.
   * @param fnSource a function expression's source, run in the threads @default '() => 0'
   */
  static async start(size: number, fnSource = '() => 0'): Promise<ThreadPool> {
    const source = `
      const { parentPort } = require('node:worker_threads');
      const fn = ${fnSource};
      parentPort.on('message', (m) => parentPort.postMessage(typeof m === 'number' ? [m, fn()] : [m[0], fn(m[1])]));
      parentPort.postMessage('ready');`;
    const threads = await Promise.all(
      Array.from({ length: size }, async () => {
        const thread = new Worker(source, { eval: true });
        await new Promise((resolve, reject) => thread.once('message', resolve).once('error', reject));
        return thread;
      }),
    );
    return new ThreadPool(threads);
  }

  /** One request to the next thread (round robin); resolves with its reply. */
  call(arg?: unknown): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      // Without an argument the request is the bare id: a number is the cheapest message to clone.
      this.threads[id % this.threads.length]!.postMessage(arg === undefined ? id : [id, arg]);
    });
  }

  /** `n` requests at once, then all their replies: returns `n`. */
  async batch(n: number): Promise<number> {
    const replies: Promise<unknown>[] = [];
    for (let i = 0; i < n; i++) replies.push(this.call());
    await Promise.all(replies);
    return n;
  }

  async stop(): Promise<void> {
    await Promise.all(this.threads.map((thread) => thread.terminate()));
  }
}
