import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ActorDiedError,
  NameTakenError,
  RemoteError,
  actor,
  get,
  getActor,
  kill,
  remote,
  type ActorHandle,
  type Session,
} from '../../lib/index.js';
import { eventually } from '../support/eventually.js';
import { eventuallyAsync, isAlive, startSession, stopSession } from '../support/session.js';

declare const zerocos: typeof import('../../lib/index.js');

let session: Session;

beforeAll(async () => {
  session = await startSession({ local: { daemons: 2, cpus: 1 } });
});

afterAll(async () => {
  await stopSession(session);
});

class CounterState {
  n: number;
  constructor(start = 0) {
    this.n = start;
  }
  incr(by = 1): number {
    this.n += by;
    return this.n;
  }
  value(): number {
    return this.n;
  }
  pid(): number {
    return globalThis.process.pid;
  }
  fail(message: string): never {
    throw new TypeError(message);
  }
}

const Counter = actor(CounterState);

describe('actors', () => {
  it('keeps the state of 4 counters, each incremented 3 times: [3, 3, 3, 3] (the Ray example)', async () => {
    const counters = await Promise.all([0, 1, 2, 3].map(() => Counter.remote()));
    const refs = counters.flatMap((c) => [c.incr.remote(), c.incr.remote(), c.incr.remote()]);
    expect(await get(refs)).toEqual([1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3]);
    expect(await get(counters.map((c) => c.value.remote()))).toEqual([3, 3, 3, 3]);
  });

  it('runs one caller’s calls in the order they were made, also when some wait for a slow ref argument', async () => {
    const List = actor(
      class List {
        items: number[] = [];
        append(item: number): number {
          this.items.push(item);
          return this.items.length;
        }
        all(): number[] {
          return this.items;
        }
      },
    );
    const list = await List.remote();
    for (let i = 0; i < 200; i++) list.append.remote(i);
    expect(await get(list.all.remote())).toEqual(Array.from({ length: 200 }, (_, i) => i));

    const slow = remote(async (x: number, ms: number) => {
      await new Promise((resolve) => setTimeout(resolve, ms));
      return x;
    });
    const other = await List.remote();
    // Every 40th item comes from a task that takes 150 ms; the calls after it must wait their turn.
    for (let i = 0; i < 200; i++) other.append.remote(i % 40 === 5 ? slow.remote(i, 150) : i);
    expect(await get(other.all.remote(), { timeoutMs: 10_000 })).toEqual(Array.from({ length: 200 }, (_, i) => i));
  });

  it('collects the messages of many tasks given its handle as an argument', async () => {
    const Log = actor(
      class Log {
        lines: string[] = [];
        write(line: string): void {
          this.lines.push(line);
        }
        read(): string[] {
          return this.lines;
        }
      },
    );
    const log = await Log.remote();
    const task = remote(async (sink: ActorHandle<{ write(line: string): void }>, i: number) => {
      await zerocos.get(sink.write.remote(`task ${i} on ${globalThis.process.pid}`));
      return i;
    });
    expect(await get(Array.from({ length: 20 }, (_, i) => task.remote(log, i)), { timeoutMs: 10_000 })).toHaveLength(20);
    const lines = await get(log.read.remote());
    expect(lines).toHaveLength(20);
    expect(lines.map((line) => Number(line.split(' ')[1])).sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });

  it('finds a named actor with getActor (the same instance); a second of that name is NameTakenError; an unknown name ActorDiedError', async () => {
    const named = await Counter.options({ name: 'shared-counter' }).remote(10);
    const found = await getActor<CounterState>('shared-counter');
    await get(named.incr.remote(1));
    expect(await get(found.incr.remote(5))).toBe(16);
    expect(await get(named.value.remote())).toBe(16);
    await expect(Counter.options({ name: 'shared-counter' }).remote()).rejects.toBeInstanceOf(NameTakenError);
    await expect(getActor('no-such-actor')).rejects.toBeInstanceOf(ActorDiedError);
  });

  it('finds a named actor from inside a task', async () => {
    await Counter.options({ name: 'task-visible' }).remote(100);
    const bump = remote(async (name: string) => {
      const counter = await zerocos.getActor<{ incr(by: number): number }>(name);
      return zerocos.get(counter.incr.remote(1));
    });
    expect(await get(bump.remote('task-visible'), { timeoutMs: 10_000 })).toBe(101);
    expect(await get((await getActor<CounterState>('task-visible')).value.remote())).toBe(101);
  });

  it('rejects calls after kill with ActorDiedError', async () => {
    const counter = await Counter.remote();
    expect(await get(counter.incr.remote())).toBe(1);
    kill(counter);
    await expect(get(counter.incr.remote(), { timeoutMs: 5000 })).rejects.toBeInstanceOf(ActorDiedError);
    await expect(get(counter.value.remote(), { timeoutMs: 5000 })).rejects.toBeInstanceOf(ActorDiedError);
  });

  it('frees the name of a killed named actor', async () => {
    const first = await Counter.options({ name: 'reusable' }).remote(1);
    kill(first);
    await eventuallyAsync(async () => {
      await expect(getActor('reusable')).rejects.toBeInstanceOf(ActorDiedError);
    });
    const second = await Counter.options({ name: 'reusable' }).remote(2);
    expect(await get(second.value.remote())).toBe(2);
  });

  it('rejects a throwing method with RemoteError; the actor keeps its state and serves on', async () => {
    const counter = await Counter.remote(5);
    await get(counter.incr.remote(2));
    const error = await get(counter.fail.remote('bad call')).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(RemoteError);
    expect((error as RemoteError).remoteName).toBe('TypeError');
    expect((error as RemoteError).message).toBe('bad call');
    expect(await get(counter.incr.remote(1))).toBe(8);
  });

  it('rejects a call of a method the class does not have, naming it', async () => {
    const counter = (await Counter.remote()) as unknown as ActorHandle<{ nope(): void }>;
    await expect(get(counter.nope.remote())).rejects.toThrow(/nope/);
  });
});

describe('actor concurrency', () => {
  /** `enter(id)` waits (up to 600 ms) until two calls have entered; reports the most seen inside at once. */
  const Gate = actor(
    class Gate {
      inside = 0;
      most = 0;
      arrived = 0;
      events: string[] = [];
      open!: () => void;
      opened = new Promise<void>((resolve) => (this.open = resolve));
      async enter(id: string): Promise<number> {
        this.events.push(`start ${id}`);
        this.inside++;
        this.most = Math.max(this.most, this.inside);
        if (++this.arrived === 2) this.open();
        await Promise.race([this.opened, new Promise((resolve) => setTimeout(resolve, 600))]);
        this.inside--;
        this.events.push(`end ${id}`);
        return this.most;
      }
      report(): { most: number; events: string[] } {
        return { most: this.most, events: this.events };
      }
    },
  );

  it('runs two async calls at once with maxConcurrency 2', async () => {
    const gate = await Gate.options({ maxConcurrency: 2 }).remote();
    const refs = [gate.enter.remote('a'), gate.enter.remote('b')];
    expect(await get(refs, { timeoutMs: 5000 })).toEqual([2, 2]);
    const { most, events } = await get(gate.report.remote());
    expect(most).toBe(2);
    expect(events.slice(0, 2)).toEqual(['start a', 'start b']);
  });

  it('runs async calls one after the other with maxConcurrency 1', async () => {
    const gate = await Gate.remote();
    const refs = [gate.enter.remote('a'), gate.enter.remote('b')];
    expect(await get(refs, { timeoutMs: 5000 })).toEqual([1, 1]);
    expect(await get(gate.report.remote())).toEqual({ most: 1, events: ['start a', 'end a', 'start b', 'end b'] });
  });
});

describe('actor restarts', () => {
  /** Kills the worker an actor runs on; returns its pid once it is gone. */
  async function killWorkerOf(handle: ActorHandle<CounterState>): Promise<number> {
    const pid = await get(handle.pid.remote());
    process.kill(pid, 'SIGKILL');
    await eventually(() => expect(isAlive(pid)).toBe(false));
    return pid;
  }

  it('re-creates an actor with maxRestarts 1 on another worker, its state from the constructor', async () => {
    const counter = await Counter.options({ maxRestarts: 1 }).remote(10);
    await get([counter.incr.remote(), counter.incr.remote(), counter.incr.remote()]);
    expect(await get(counter.value.remote())).toBe(13);
    const dead = await killWorkerOf(counter);
    // Calls in flight when it died fail (maxTaskRetries 0); once restarted, calls reach the new instance.
    const state = await eventuallyAsync(() => get(counter.value.remote(), { timeoutMs: 2000 }));
    expect(state).toBe(10);
    expect(await get(counter.pid.remote())).not.toBe(dead);
    expect(await get(counter.incr.remote())).toBe(11);
  });

  it('re-sends a call lost with its worker once the actor restarted, with maxTaskRetries 1', async () => {
    const counter = await Counter.options({ maxRestarts: 1, maxTaskRetries: 1 }).remote(0);
    const dead = await killWorkerOf(counter);
    expect(await get(counter.incr.remote(), { timeoutMs: 10_000 })).toBe(1);
    expect(await get(counter.pid.remote())).not.toBe(dead);
  });

  it('rejects calls with ActorDiedError once the worker of an actor with maxRestarts 0 is killed', async () => {
    const counter = await Counter.remote(0);
    await killWorkerOf(counter);
    await expect(get(counter.incr.remote(), { timeoutMs: 10_000 })).rejects.toBeInstanceOf(ActorDiedError);
    await expect(get(counter.value.remote(), { timeoutMs: 10_000 })).rejects.toBeInstanceOf(ActorDiedError);
  });
});
