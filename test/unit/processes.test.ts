import { afterEach, describe, expect, it } from 'vitest';
import {
  CallMessage,
  DownMessage,
  EncodeError,
  ExitMessage,
  InvalidArgumentError,
  MessageTooLargeError,
  NameTakenError,
  Node,
  NodeDownError,
  NodeStoppedError,
  NoProcError,
  MailboxClosedError,
  CalleeExitedError,
  RemoteError,
  TimeoutError,
  type CrashEvent,
  type DeadLetter,
  type ErrorInfo,
  type NodeEvents,
  type Pid,
  type ProcessContext,
  type SpawnOptions,
} from '../../lib/index.js';
import { formatNodeId, parseNodeId } from '../../lib/wire/address.js';
import { eventually } from '../support/eventually.js';

// Every wait below is bounded: by this per-test timeout at worst, normally by a promise that
// settles as soon as the awaited event happens. No test sleeps to synchronise. Generous, since
// it is only a bound: with both cores busy a node's start and a round trip are many times slower.
const TEST_TIMEOUT = 20_000;

const nodes: Node[] = [];

async function startNode(name: string, options: Parameters<typeof Node.start>[0] = {}): Promise<Node> {
  const node = await Node.start({ name, ...options });
  nodes.push(node);
  return node;
}

afterEach(async () => {
  const stopping = nodes.splice(0);
  await Promise.all(stopping.map((node) => node.stop()));
});

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
}

function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** The first `event` the node emits from now on. */
function nextEvent<K extends keyof NodeEvents>(node: Node, event: K): Promise<NodeEvents[K][0]> {
  return new Promise((resolve) => {
    (node as unknown as { once(e: string, l: (arg: unknown) => void): void }).once(event, (arg) => resolve(arg as NodeEvents[K][0]));
  });
}

/**
 * Spawns a process whose result (or thrown error) settles `result`, so a test can await what
 * happened inside it. The process still exits with the body's outcome.
 */
function run<T>(node: Node, body: (self: ProcessContext) => Promise<T>, options?: SpawnOptions): { pid: Pid; result: Promise<T> } {
  const done = deferred<T>();
  done.promise.catch(() => {}); // observed by the test when it awaits `result`
  const pid = node.spawn(async (self) => {
    try {
      const value = await body(self);
      done.resolve(value);
      return value;
    } catch (error) {
      done.reject(error);
      throw error;
    }
  }, options);
  return { pid, result: done.promise };
}


/** Resolves with the DownMessage of a node-level monitor on `target`. */
function downOf(node: Node, target: Pid | string): Promise<DownMessage> {
  return new Promise((resolve) => node.monitor(target, resolve));
}

/** A process that waits forever (until killed or its node stops). */
async function forever(self: ProcessContext): Promise<void> {
  await self.receive(() => false);
}

/** An echo server: answers every call with `{echo: request}`. */
async function echo(self: ProcessContext): Promise<void> {
  for await (const message of self) if (message instanceof CallMessage) message.reply({ echo: message.request });
}

describe('processes on one node', { timeout: TEST_TIMEOUT }, () => {
  describe('send and receive', () => {
    it('delivers messages in send order', async () => {
      const node = await startNode('order');
      const { pid, result } = run(node, async (self) => {
        const got: unknown[] = [];
        for (let i = 0; i < 50; i++) got.push(await self.receive());
        return got;
      });
      for (let i = 0; i < 50; i++) expect(node.send(pid, i)).toBe(true);
      expect(await result).toEqual(Array.from({ length: 50 }, (_, i) => i));
    });

    it('preserves order between two processes, with the sender pid attached by the app', async () => {
      const node = await startNode('pair');
      const receiver = run(node, async (self) => {
        const got: { from: Pid; n: number }[] = [];
        for (let i = 0; i < 20; i++) got.push(await self.receive());
        return got;
      });
      const sender = run(node, async (self) => {
        for (let n = 0; n < 20; n++) self.send(receiver.pid, { from: self.pid, n });
        return self.pid;
      });
      const senderPid = await sender.result;
      const got = await receiver.result;
      expect(got.map((m) => m.n)).toEqual(Array.from({ length: 20 }, (_, i) => i));
      expect(got.every((m) => m.from.id === senderPid.id && m.from.node === node.id)).toBe(true);
    });

    it('selective receive inside a process leaves other messages queued in order', async () => {
      const node = await startNode('selective');
      const { pid, result } = run(node, async (self) => {
        const first = await self.receive({ type: 'urgent' });
        const sizeAfter = self.mailboxSize;
        const rest = [await self.receive(), await self.receive(), await self.receive()];
        return { first, sizeAfter, rest };
      });
      node.send(pid, { type: 'normal', n: 1 });
      node.send(pid, { type: 'normal', n: 2 });
      node.send(pid, { type: 'urgent', n: 3 });
      node.send(pid, { type: 'normal', n: 4 });
      const { first, sizeAfter, rest } = await result;
      expect(first).toEqual({ type: 'urgent', n: 3 });
      expect(sizeAfter).toBe(3);
      expect(rest).toEqual([
        { type: 'normal', n: 1 },
        { type: 'normal', n: 2 },
        { type: 'normal', n: 4 },
      ]);
    });

    it('a receive with timeoutMs rejects with TimeoutError when nothing matches', async () => {
      const node = await startNode('timeout');
      const { pid, result } = run(node, async (self) => {
        const error = await self.receive({ type: 'never' }, { timeoutMs: 30 }).catch((e: unknown) => e);
        const polled = await self.receive({ type: 'never' }, { timeoutMs: 0 }).catch((e: unknown) => e);
        return { error, polled, queued: self.mailboxSize };
      });
      node.send(pid, { type: 'other' });
      const { error, polled, queued } = await result;
      expect(error).toBeInstanceOf(TimeoutError);
      expect((error as TimeoutError).code).toBe('ETIMEOUT');
      expect((error as Error).message).toMatch(/30 ms/);
      expect(polled).toBeInstanceOf(TimeoutError);
      expect(queued).toBe(1);
    });

    it('a process that exits normally is gone: sending from it afterwards throws MailboxClosedError', async () => {
      const node = await startNode('exited');
      const context = deferred<ProcessContext>();
      const pid = node.spawn((self) => context.resolve(self));
      const down = downOf(node, pid);
      const self = await context.promise;
      expect((await down).reason).toBe('normal');
      expect(() => self.send(pid, 'x')).toThrow(MailboxClosedError);
      expect(node.stats().processes).toBe(0);
    });
  });

  describe('call and reply', () => {
    it('call/reply from outside and from inside a process', async () => {
      const node = await startNode('call');
      const server = node.spawn(echo);
      expect(await node.call(server, 'hi')).toEqual({ echo: 'hi' });
      const client = run(node, async (self) => [await self.call(server, 1), await self.call(server, { n: 2 })]);
      expect(await client.result).toEqual([{ echo: 1 }, { echo: { n: 2 } }]);
    });

    it('CallMessage carries the caller pid, and a second answer is dropped', async () => {
      const node = await startNode('callmsg');
      const seen = deferred<{ from: Pid; first: boolean; second: boolean }>();
      const server = node.spawn(async (self) => {
        const message = (await self.receive()) as CallMessage;
        const first = message.reply('one');
        const second = message.reply('two');
        seen.resolve({ from: message.from, first, second });
      });
      expect(await node.call(server, 'q')).toBe('one');
      const { from, first, second } = await seen.promise;
      expect(from).toEqual({ node: node.id, id: 0 });
      expect(first).toBe(true);
      expect(second).toBe(false);
    });

    it('fail(error) rejects the caller with a RemoteError carrying name, message and stack', async () => {
      const node = await startNode('fail');
      const server = node.spawn(async (self) => {
        const first = (await self.receive()) as CallMessage;
        first.fail(new Error('boom'));
        const second = (await self.receive()) as CallMessage;
        class ValidationError extends Error {
          readonly code = 'EVALIDATION';
          constructor(message: string) {
            super(message);
            this.name = 'ValidationError';
          }
        }
        second.fail(new ValidationError('bad input'));
      });
      const error = await node.call(server, 'x').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RemoteError);
      const remote = error as RemoteError;
      expect(remote.remoteName).toBe('Error');
      expect(remote.message).toBe('boom');
      expect(remote.code).toBe('EREMOTE');
      expect(remote.remoteStack).toEqual(expect.stringContaining('boom'));
      expect(remote.nodeId).toBe(node.id);
      expect(remote.pid).toBe(server.id);

      const typed = (await node.call(server, 'y').catch((e: unknown) => e)) as RemoteError;
      expect(typed).toBeInstanceOf(RemoteError);
      expect(typed.remoteName).toBe('ValidationError');
      expect(typed.message).toBe('bad input');
      expect(typed.code).toBe('EVALIDATION');
    });

    it('a call to an unknown pid or name rejects NoProcError at once', async () => {
      const node = await startNode('noproc');
      const started = performance.now();
      await expect(node.call({ node: node.id, id: 4242 }, 'x', { timeoutMs: 4000 })).rejects.toBeInstanceOf(NoProcError);
      await expect(node.call('nobody', 'x', { timeoutMs: 4000 })).rejects.toBeInstanceOf(NoProcError);
      // Settled by the kernel's noproc answer, far ahead of the call timeout.
      expect(performance.now() - started).toBeLessThan(1000);
    });

    it('a call to a process that exits before replying rejects CalleeExitedError with its reason', async () => {
      const node = await startNode('exitfirst');
      const quitter = node.spawn(async (self) => {
        await self.receive(); // takes the call, never answers
      });
      const error = await node.call(quitter, 'x', { timeoutMs: 4000 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CalleeExitedError);
      expect((error as CalleeExitedError).reason).toBe('normal');

      const crasher = node.spawn(async (self) => {
        await self.receive();
        throw new Error('died mid-call');
      });
      const crashed = (await node.call(crasher, 'x', { timeoutMs: 4000 }).catch((e: unknown) => e)) as CalleeExitedError;
      expect(crashed).toBeInstanceOf(CalleeExitedError);
      expect(crashed.reason).toMatchObject({ name: 'Error', message: 'died mid-call' });
    });

    it('a call that is not answered in time rejects TimeoutError, and a late reply is dropped', async () => {
      const node = await startNode('calltimeout');
      const late = deferred<boolean>();
      const server = node.spawn(async (self) => {
        const call = (await self.receive((m) => m instanceof CallMessage)) as CallMessage;
        await self.receive({ type: 'answer-now' });
        late.resolve(call.reply('too late'));
      });
      const error = await node.call(server, 'x', { timeoutMs: 50 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TimeoutError);
      expect((error as Error).message).toMatch(/timed out after 50 ms/);
      node.send(server, { type: 'answer-now' });
      expect(await late.promise).toBe(false);
    });

    it('a call with timeoutMs Infinity has no timer: it ends by its reply, or by the target exiting', async () => {
      const node = await startNode('notimeout');
      const server = node.spawn(async (self) => {
        const first = (await self.receive((m) => m instanceof CallMessage)) as CallMessage;
        first.reply('answered');
        await self.receive((m) => m instanceof CallMessage); // takes the second call, then exits unanswered
      });
      expect(await node.call(server, 'one', { timeoutMs: Infinity })).toBe('answered');
      const error = await node.call(server, 'two', { timeoutMs: Infinity }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CalleeExitedError);
    });

    it('a call to a process with a full mailbox is refused with EMAILBOXFULL', async () => {
      const node = await startNode('fullcall');
      const stuck = node.spawn(forever, { mailboxCapacity: 1 });
      node.send(stuck, 'fills the mailbox');
      const error = (await node.call(stuck, 'x', { timeoutMs: 4000 }).catch((e: unknown) => e)) as RemoteError;
      expect(error).toBeInstanceOf(RemoteError);
      expect(error.code).toBe('EMAILBOXFULL');
    });
  });

  describe('names', () => {
    it('register, whereis, send by name, unregister', async () => {
      const node = await startNode('names');
      const { pid, result } = run(node, async (self) => [await self.receive(), await self.receive()]);
      node.register('worker', pid);
      expect(node.whereis('worker')).toEqual(pid);
      node.send('worker', 'by name');
      const other = node.spawn(forever);
      expect(() => node.register('worker', other)).toThrow(NameTakenError);
      expect(() => node.register('second-name', pid)).toThrow(InvalidArgumentError);
      expect(node.unregister('worker')).toBe(true);
      expect(node.whereis('worker')).toBeUndefined();
      expect(node.unregister('worker')).toBe(false);

      const dead = nextEvent(node, 'deadLetter');
      node.send('worker', 'nobody home');
      expect(await dead).toMatchObject({ to: 'worker', reason: 'noproc', message: 'nobody home' });
      node.send(pid, 'by pid');
      expect(await result).toEqual(['by name', 'by pid']);
    });

    it('spawn with a name, self.register, and NameTakenError on spawn', async () => {
      const node = await startNode('spawnname');
      const named = node.spawn(echo, { name: 'echo' });
      expect(node.whereis('echo')).toEqual(named);
      expect(await node.call('echo', 'via name')).toEqual({ echo: 'via name' });
      expect(() => node.spawn(forever, { name: 'echo' })).toThrow(NameTakenError);

      const registered = deferred();
      const self = node.spawn(async (ctx) => {
        ctx.register('self-registered');
        registered.resolve();
        await echo(ctx);
      });
      await registered.promise;
      expect(node.whereis('self-registered')).toEqual(self);
    });

    it('names are removed when their process exits, and can be reused', async () => {
      const node = await startNode('namegone');
      const pid = node.spawn(async (self) => {
        await self.receive();
      }, { name: 'short-lived' });
      const down = downOf(node, pid);
      node.send('short-lived', 'go');
      await down;
      expect(node.whereis('short-lived')).toBeUndefined();
      const next = node.spawn(forever, { name: 'short-lived' });
      expect(node.whereis('short-lived')).toEqual(next);
    });

    it('only live local processes can be registered', async () => {
      const node = await startNode('badreg');
      expect(() => node.register('ghost', { node: node.id, id: 999 })).toThrow(InvalidArgumentError);
      expect(() => node.register('foreign', { node: 'other:abc@tcp://127.0.0.1:1', id: 1 })).toThrow(InvalidArgumentError);
    });
  });

  describe('dead letters', () => {
    it("a send to a dead pid emits 'deadLetter' with reason 'noproc' and the message", async () => {
      const node = await startNode('deadletter');
      const pid = node.spawn(() => undefined);
      await downOf(node, pid);
      const dead = nextEvent(node, 'deadLetter');
      node.send(pid, { payload: 42 });
      const letter: DeadLetter = await dead;
      expect(letter.reason).toBe('noproc');
      expect(letter.message).toEqual({ payload: 42 });
      expect(letter.to).toEqual(pid);
      expect(letter.from).toEqual({ node: node.id, id: 0 });
      expect(node.stats().deadLetters).toBe(1);
    });

    it("a send beyond mailboxCapacity is a 'mailbox_full' dead letter", async () => {
      const node = await startNode('full');
      const letters: DeadLetter[] = [];
      node.on('deadLetter', (letter) => letters.push(letter));
      const pid = node.spawn(forever, { mailboxCapacity: 2 });
      node.send(pid, 1);
      node.send(pid, 2);
      expect(letters).toEqual([]);
      node.send(pid, 3);
      expect(letters).toHaveLength(1);
      expect(letters[0]).toMatchObject({ reason: 'mailbox_full', message: 3, to: pid });
    });
  });

  describe('monitors', () => {
    /** A process that monitors `target`, tells `target` to go, and returns the DownMessage. */
    function watcher(node: Node, target: Pid | string) {
      const ref = deferred<number>();
      const proc = run(node, async (self) => {
        const r = self.monitor(target);
        ref.resolve(r);
        self.send(target, 'go'); // for a pid that does not exist, a harmless dead letter
        return (await self.receive((m) => m instanceof DownMessage)) as DownMessage;
      });
      return { ...proc, ref: ref.promise };
    }

    it("delivers a DownMessage with reason 'normal' when the target returns", async () => {
      const node = await startNode('mon-normal');
      const target = node.spawn(async (self) => {
        await self.receive();
      });
      const w = watcher(node, target);
      const down = await w.result;
      expect(down).toBeInstanceOf(DownMessage);
      expect(down.reason).toBe('normal');
      expect(down.ref).toBe(await w.ref);
      expect(down.target).toEqual(target);
    });

    it('delivers the ErrorInfo as reason when the target throws', async () => {
      const node = await startNode('mon-throw');
      const target = node.spawn(async (self) => {
        await self.receive();
        throw new TypeError('bad thing');
      });
      const down = await watcher(node, target).result;
      const reason = down.reason as ErrorInfo;
      expect(reason).toMatchObject({ name: 'TypeError', message: 'bad thing', nodeId: node.id, pid: target.id });
      expect(reason.stack).toEqual(expect.stringContaining('bad thing'));
    });

    it("delivers 'killed' after node.kill(pid)", async () => {
      const node = await startNode('mon-kill');
      const target = node.spawn(forever);
      const ready = deferred();
      const w = run(node, async (self) => {
        self.monitor(target);
        ready.resolve();
        return (await self.receive()) as DownMessage;
      });
      await ready.promise;
      node.kill(target);
      const down = await w.result;
      expect(down).toBeInstanceOf(DownMessage);
      expect(down.reason).toBe('killed');
    });

    it("delivers 'noproc' for a pid that does not exist", async () => {
      const node = await startNode('mon-noproc');
      const ghost = { node: node.id, id: 99_999 };
      const down = await watcher(node, ghost).result;
      expect(down.reason).toBe('noproc');
      expect(down.target).toEqual(ghost);
    });

    it('monitors a process by its registered name', async () => {
      const node = await startNode('mon-name');
      const target = node.spawn(async (self) => {
        await self.receive();
      }, { name: 'named-target' });
      expect(node.whereis('named-target')).toEqual(target);
      const w = run(node, async (self) => {
        self.monitor('named-target');
        self.send('named-target', 'go');
        return (await self.receive()) as DownMessage;
      });
      const down = await w.result;
      expect(down.target).toBe('named-target');
      expect(down.reason).toBe('normal');
      expect(node.whereis('named-target')).toBeUndefined();
    });

    it('demonitor stops delivery', async () => {
      const node = await startNode('demon');
      const target = node.spawn(async (self) => {
        await self.receive();
      });
      const demonitored = deferred<{ first: boolean; second: boolean }>();
      const w = run(node, async (self) => {
        const ref = self.monitor(target);
        demonitored.resolve({ first: self.demonitor(ref), second: self.demonitor(ref) });
        // The next message is the sentinel the test sends after the target has gone.
        return { next: await self.receive(), left: self.mailboxSize };
      });
      expect(await demonitored.promise).toEqual({ first: true, second: false });
      const gone = downOf(node, target);
      node.send(target, 'go');
      expect((await gone).reason).toBe('normal');
      node.send(w.pid, 'sentinel');
      expect(await w.result).toEqual({ next: 'sentinel', left: 0 });
    });

    it('demonitor with flush removes a DownMessage already queued', async () => {
      // Erlang's demonitor(Ref, [flush]): the DOWN message for Ref is removed from the mailbox
      // even though the monitor has already fired.
      const node = await startNode('flush');
      const target = node.spawn(async (self) => {
        await self.receive();
      });
      const w = run(node, async (self) => {
        const ref = self.monitor(target);
        self.send(target, 'go');
        await self.receive({ type: 'proceed' }); // the DownMessage arrives meanwhile and stays queued
        const queuedBefore = self.mailboxSize;
        self.demonitor(ref, { flush: true });
        return { queuedBefore, queuedAfter: self.mailboxSize };
      });
      await downOf(node, target); // fired in the same exit as the watcher's DownMessage
      node.send(w.pid, { type: 'proceed' });
      const { queuedBefore, queuedAfter } = await w.result;
      expect(queuedBefore).toBe(1);
      expect(queuedAfter).toBe(0);
    });

    it('node.monitor calls its listener once with the reason, and node.demonitor cancels it', async () => {
      const node = await startNode('listener');
      const target = node.spawn(async (self) => {
        const m = await self.receive();
        if (m === 'crash') throw new Error('listener saw this');
      });
      const calls: DownMessage[] = [];
      const cancelled: DownMessage[] = [];
      const cancelRef = node.monitor(target, (down) => cancelled.push(down));
      expect(node.demonitor(cancelRef)).toBe(true);
      const ref = deferred<number>();
      const fired = new Promise<DownMessage>((resolve) =>
        ref.resolve(
          node.monitor(target, (down) => {
            calls.push(down);
            resolve(down);
          }),
        ),
      );
      node.send(target, 'crash');
      const down = await fired;
      expect(down.ref).toBe(await ref.promise);
      expect(down.target).toEqual(target);
      expect(down.reason).toMatchObject({ name: 'Error', message: 'listener saw this' });
      expect(calls).toHaveLength(1);
      expect(cancelled).toHaveLength(0);
    });
  });

  describe('links and exits', () => {
    it('a linked process dies with the same reason when its partner throws', async () => {
      const node = await startNode('link');
      const partner = node.spawn(forever);
      const thrower = node.spawn(async (self) => {
        self.link(partner);
        await self.receive();
        throw new Error('linked boom');
      });
      const partnerDown = downOf(node, partner);
      const throwerDown = downOf(node, thrower);
      node.send(thrower, 'go');
      const [p, t] = await Promise.all([partnerDown, throwerDown]);
      expect(t.reason).toMatchObject({ name: 'Error', message: 'linked boom', pid: thrower.id });
      expect(p.reason).toEqual(t.reason);
    });

    it('spawn with link: true links the child to its parent', async () => {
      const node = await startNode('spawnlink');
      const child = deferred<Pid>();
      const parent = node.spawn(async (self) => {
        child.resolve(
          self.spawn(
            async (c) => {
              await c.receive();
              throw new Error('child failed');
            },
            { link: true },
          ),
        );
        await forever(self);
      });
      const childPid = await child.promise;
      const parentDown = downOf(node, parent);
      node.send(childPid, 'go');
      expect((await parentDown).reason).toMatchObject({ message: 'child failed' });
    });

    it('a trapExit process gets an ExitMessage instead of dying', async () => {
      const node = await startNode('trap');
      const trapper = run(
        node,
        async (self) => {
          const exit = (await self.receive((m) => m instanceof ExitMessage)) as ExitMessage;
          const after = await self.receive({ type: 'still-alive' });
          return { exit, after };
        },
        { trapExit: true },
      );
      const thrower = node.spawn(async (self) => {
        self.link(trapper.pid);
        await self.receive();
        throw new Error('trapped boom');
      });
      const throwerDown = downOf(node, thrower);
      node.send(thrower, 'go');
      await throwerDown;
      node.send(trapper.pid, { type: 'still-alive' });
      const { exit, after } = await trapper.result;
      expect(exit).toBeInstanceOf(ExitMessage);
      expect(exit.from).toEqual(thrower);
      expect(exit.reason).toMatchObject({ name: 'Error', message: 'trapped boom' });
      expect(after).toEqual({ type: 'still-alive' });
    });

    it("a 'normal' exit does not kill the linked partner (a trapping partner is told)", async () => {
      const node = await startNode('normal-link');
      const partner = node.spawn(echo);
      const trapper = run(node, async (self) => (await self.receive((m) => m instanceof ExitMessage)) as ExitMessage, { trapExit: true });
      const linker = node.spawn(async (self) => {
        self.link(partner);
        self.link(trapper.pid);
        await self.receive();
      });
      const linkerDown = downOf(node, linker);
      node.send(linker, 'go');
      expect((await linkerDown).reason).toBe('normal');
      expect(await node.call(partner, 'still here')).toEqual({ echo: 'still here' });
      const exit = await trapper.result;
      expect(exit.reason).toBe('normal');
      expect(exit.from).toEqual(linker);
    });

    it('unlink stops the exit signal', async () => {
      const node = await startNode('unlink');
      const partner = node.spawn(echo);
      const thrower = node.spawn(async (self) => {
        self.link(partner);
        self.unlink(partner);
        await self.receive();
        throw new Error('unlinked boom');
      });
      const down = downOf(node, thrower);
      node.send(thrower, 'go');
      expect((await down).reason).toMatchObject({ message: 'unlinked boom' });
      expect(await node.call(partner, 'alive')).toEqual({ echo: 'alive' });
    });

    it("linking to a pid that does not exist kills the linker with 'noproc'", async () => {
      const node = await startNode('link-noproc');
      const linker = node.spawn(async (self) => {
        self.link({ node: node.id, id: 77_777 });
        await forever(self);
      });
      expect((await downOf(node, linker)).reason).toBe('noproc');
    });

    it("kill is untrappable: a trapping process killed by node.kill exits with 'killed'", async () => {
      const node = await startNode('kill');
      const trapper = node.spawn(forever, { trapExit: true });
      const down = downOf(node, trapper);
      node.kill(trapper);
      expect((await down).reason).toBe('killed');
      expect(node.stats().processes).toBe(0);
    });

    it('node.exit with another reason: trapped as an ExitMessage from pid 0, fatal otherwise', async () => {
      const node = await startNode('exit');
      const trapper = run(node, async (self) => (await self.receive()) as ExitMessage, { trapExit: true });
      const plain = node.spawn(forever);
      const plainDown = downOf(node, plain);
      node.exit(trapper.pid, 'custom');
      node.exit(plain, 'custom');
      const exit = await trapper.result;
      expect(exit).toBeInstanceOf(ExitMessage);
      expect(exit.reason).toBe('custom');
      expect(exit.from).toEqual({ node: node.id, id: 0 });
      expect((await plainDown).reason).toBe('custom');
    });

    it("self.exit(reason) ends the process with that reason without a 'crash' event", async () => {
      const node = await startNode('selfexit');
      const crashes: CrashEvent[] = [];
      node.on('crash', (event) => crashes.push(event));
      const pid = node.spawn((self) => self.exit({ custom: 'reason' }));
      expect((await downOf(node, pid)).reason).toEqual({ custom: 'reason' });
      expect(crashes).toEqual([]);
    });

    it("a crash emits the node's 'crash' event with the pid and ErrorInfo", async () => {
      const node = await startNode('crash');
      const crash = nextEvent(node, 'crash');
      const pid = node.spawn(async () => {
        throw new RangeError('out of range');
      });
      const event = await crash;
      expect(event.pid).toEqual(pid);
      expect(event.reason).toMatchObject({ name: 'RangeError', message: 'out of range', nodeId: node.id, pid: pid.id });
      expect(node.stats().crashes).toBe(1);
    });

    it('a synchronous throw in the body is a crash too', async () => {
      const node = await startNode('syncthrow');
      const crash = nextEvent(node, 'crash');
      const pid = node.spawn(() => {
        throw new Error('sync');
      });
      expect(await crash).toMatchObject({ pid, reason: { message: 'sync' } });
    });
  });

  describe('stop', () => {
    it("stop ends processes with 'shutdown' (failing calls they held) and refuses new work", async () => {
      const node = await startNode('stopping');
      const stuck = node.spawn(async (self) => {
        await self.receive(); // takes the call and sits on it
        await forever(self);
      });
      const down = downOf(node, stuck);
      const pending = node.call(stuck, 'x', { timeoutMs: 4000 }).catch((e: unknown) => e);
      const watcher = run(node, async (self) => {
        self.monitor(stuck);
        return self.receive();
      });
      await node.stop();
      expect((await down).reason).toBe('shutdown');
      // The process exited ('shutdown') while holding the call: the caller hears that first.
      const error = await pending;
      expect(error).toBeInstanceOf(CalleeExitedError);
      expect((error as CalleeExitedError).reason).toBe('shutdown');
      await expect(watcher.result).rejects.toBeInstanceOf(MailboxClosedError);
      expect(() => node.spawn(forever)).toThrow(NodeStoppedError);
      expect(() => node.send(stuck, 'x')).toThrow(NodeStoppedError);
      expect(() => node.monitor(stuck, () => {})).toThrow(NodeStoppedError);
      await node.stop(); // idempotent
    });

    it('call after stop returns a rejected promise rather than throwing synchronously', async () => {
      const node = await startNode('stopped-call');
      const pid = node.spawn(echo);
      await node.stop();
      let promise: Promise<unknown> | undefined;
      expect(() => {
        promise = node.call(pid, 'x');
      }).not.toThrow();
      await expect(promise).rejects.toBeInstanceOf(NodeStoppedError);
    });
  });
});

describe('processes on two nodes', { timeout: TEST_TIMEOUT }, () => {
  async function twoNodes(options: Parameters<typeof Node.start>[0] = {}): Promise<[Node, Node]> {
    return Promise.all([startNode('alpha', options), startNode('beta', options)]);
  }

  it('a call to a node whose process is gone fails with NodeDownError (unreachable) at once, not after the connect timeout', async () => {
    const [a, b] = await twoNodes({ connectTimeoutMs: 60_000 });
    await b.stop();
    // b's incarnation at a port that refuses connections for sure. b's own port, freed by stop(), is
    // an ephemeral one: on a busy machine another process can bind it (or a reconnect attempt can
    // TCP-self-connect to it) within the test, and a connection that opens and then drops is
    // reported 'disconnected', not 'unreachable'. Port 1 is outside the ephemeral range.
    const { name, incarnation } = parseNodeId(b.id)!;
    const gone = formatNodeId(name, incarnation, 'tcp://127.0.0.1:1');
    const error = await a.call({ node: gone, id: 1 }, 'anyone?', { timeoutMs: 5000 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NodeDownError);
    expect((error as NodeDownError).reason).toBe('unreachable');
  });

  it('remote call and remote fail', async () => {
    const [a, b] = await twoNodes();
    const server = b.spawn(async (self) => {
      for await (const m of self) {
        if (!(m instanceof CallMessage)) continue;
        if (m.request === 'fail') m.fail(new Error('remote boom'));
        else m.reply({ echo: m.request, from: m.from });
      }
    });
    expect(await a.call(server, 'hi')).toEqual({ echo: 'hi', from: { node: a.id, id: 0 } });
    const client = run(a, async (self) => ({ reply: await self.call(server, [1, 2]), self: self.pid }));
    const { reply, self } = await client.result;
    expect(reply).toEqual({ echo: [1, 2], from: self });

    const error = (await a.call(server, 'fail').catch((e: unknown) => e)) as RemoteError;
    expect(error).toBeInstanceOf(RemoteError);
    expect(error.remoteName).toBe('Error');
    expect(error.message).toBe('remote boom');
    expect(error.nodeId).toBe(b.id);
    expect(error.remoteStack).toEqual(expect.stringContaining('remote boom'));
  });

  it('remote call to an unknown pid rejects NoProcError; to a process that exits first, CalleeExitedError', async () => {
    const [a, b] = await twoNodes();
    await expect(a.call({ node: b.id, id: 5555 }, 'x', { timeoutMs: 4000 })).rejects.toBeInstanceOf(NoProcError);
    await expect(a.call({ name: 'nobody', node: b.id }, 'x', { timeoutMs: 4000 })).rejects.toBeInstanceOf(NoProcError);
    const quitter = b.spawn(async (self) => {
      await self.receive();
    });
    const error = (await a.call(quitter, 'x', { timeoutMs: 4000 }).catch((e: unknown) => e)) as CalleeExitedError;
    expect(error).toBeInstanceOf(CalleeExitedError);
    expect(error.reason).toBe('normal');
  });

  it('messages between nodes keep their order, and binary payloads arrive intact', async () => {
    const [a, b] = await twoNodes();
    const receiver = run(b, async (self) => {
      const got: unknown[] = [];
      for (let i = 0; i < 200; i++) got.push(await self.receive());
      return { got, bin: await self.receive() };
    });
    for (let i = 0; i < 200; i++) a.send(receiver.pid, { i });
    a.send(receiver.pid, Uint8Array.from([1, 2, 3, 250]));
    const { got, bin } = await receiver.result;
    expect(got).toEqual(Array.from({ length: 200 }, (_, i) => ({ i })));
    expect(bin).toBeInstanceOf(Uint8Array);
    expect([...(bin as Uint8Array)]).toEqual([1, 2, 3, 250]);
  });

  it('remote monitor fires when the remote process exits; noproc for an unknown remote pid', async () => {
    const [a, b] = await twoNodes();
    const target = b.spawn(async (self) => {
      await self.receive();
      throw new Error('remote crash');
    });
    const w = run(a, async (self) => {
      const ref = self.monitor(target);
      self.send(target, 'go'); // same channel as the Monitor envelope, so it arrives after it
      return { ref, down: (await self.receive()) as DownMessage };
    });
    const { ref, down } = await w.result;
    expect(down).toBeInstanceOf(DownMessage);
    expect(down.ref).toBe(ref);
    expect(down.target).toEqual(target);
    expect(down.reason).toMatchObject({ name: 'Error', message: 'remote crash', nodeId: b.id, pid: target.id });

    const ghost = await downOf(a, { node: b.id, id: 31_337 });
    expect(ghost.reason).toBe('noproc');
  });

  it('remote link: the local partner dies with the remote reason, or traps it', async () => {
    const [a, b] = await twoNodes();
    const remote = b.spawn(async (self) => {
      await self.receive();
      await self.receive();
      throw new Error('remote link boom');
    });
    const linked = a.spawn(async (self) => {
      self.link(remote);
      self.send(remote, 'linked'); // after the Link envelope on the same channel
      await forever(self);
    });
    const trapper = run(
      a,
      async (self) => {
        self.link(remote);
        self.send(remote, 'linked');
        return (await self.receive((m) => m instanceof ExitMessage)) as ExitMessage;
      },
      { trapExit: true },
    );
    const linkedDown = downOf(a, linked);
    const { reason } = await linkedDown;
    expect(reason).toMatchObject({ name: 'Error', message: 'remote link boom', nodeId: b.id });
    const exit = await trapper.result;
    expect(exit.from).toEqual(remote);
    expect(exit.reason).toMatchObject({ message: 'remote link boom' });
  });

  it('a local crash propagates along a link to a remote process', async () => {
    const [a, b] = await twoNodes();
    const remote = b.spawn(forever);
    const remoteDown = downOf(b, remote);
    const local = a.spawn(async (self) => {
      self.link(remote);
      await self.receive();
      throw new Error('local link boom');
    });
    // Wait until B has the link (a round trip on the same channel after the Link envelope).
    await a.call(b.spawn(echo), 'sync');
    a.send(local, 'go');
    expect((await remoteDown).reason).toMatchObject({ message: 'local link boom', nodeId: a.id });
  });

  it('send to {name, node}, node.lookup, and dead letters for unknown remote names', async () => {
    const [a, b] = await twoNodes();
    const server = b.spawn(
      async (self) => {
        for (;;) {
          const m = (await self.receive()) as { from: Pid; n: number };
          self.send(m.from, { pong: m.n });
        }
      },
      { name: 'srv' },
    );
    const client = run(a, async (self) => {
      self.send({ name: 'srv', node: b.id }, { from: self.pid, n: 7 });
      return self.receive();
    });
    expect(await client.result).toEqual({ pong: 7 });

    expect(await a.lookup('srv', b.id)).toEqual(server);
    expect(await a.lookup('missing', b.id)).toBeUndefined();
    expect(await a.lookup('srv', a.id)).toBeUndefined(); // a local lookup on A

    const dead = nextEvent(a, 'deadLetter');
    a.send({ name: 'missing', node: b.id }, 'lost');
    const letter = await dead;
    expect(letter).toMatchObject({ reason: 'noproc', message: 'lost', to: { name: 'missing', node: b.id }, from: { node: a.id, id: 0 } });
  });

  it('a remote send to a full mailbox comes back as a mailbox_full dead letter', async () => {
    const [a, b] = await twoNodes();
    const stuck = b.spawn(forever, { mailboxCapacity: 1 });
    const dead = nextEvent(a, 'deadLetter');
    a.send(stuck, 'fits');
    a.send(stuck, Buffer.from('overflow'));
    const letter = await dead;
    expect(letter.reason).toBe('mailbox_full');
    expect(letter.to).toEqual(stuck);
    expect(Buffer.from(letter.message as Uint8Array).toString()).toBe('overflow');
  });

  it("a call pending on a remote node when the caller's own node stops rejects NodeStoppedError", async () => {
    const [a, b] = await twoNodes();
    const silent = b.spawn(forever);
    const pending = a.call(silent, 'x', { timeoutMs: 4000 }).catch((e: unknown) => e);
    await a.stop();
    expect(await pending).toBeInstanceOf(NodeStoppedError);
  });

  it('a binary payload over maxMessageBytes throws MessageTooLargeError at send; other oversize or unencodable sends become dead letters', async () => {
    const a = await startNode('alpha', { maxMessageBytes: 1024 });
    const b = await startNode('beta');
    const receiver = run(b, async (self) => self.receive());
    expect(() => a.send(receiver.pid, Buffer.alloc(1025))).toThrow(MessageTooLargeError);

    const letters: DeadLetter[] = [];
    const two = new Promise<void>((resolve) =>
      a.on('deadLetter', (letter) => {
        letters.push(letter);
        if (letters.length === 2) resolve();
      }),
    );
    const big = { text: 'x'.repeat(10_000) };
    a.send(receiver.pid, 'warm'); // still delivered: the rejects below do not hold up the channel
    a.send(receiver.pid, big);
    a.send(receiver.pid, { n: 2n ** 70n });
    await two;
    expect(await receiver.result).toBe('warm');
    expect(letters[0]).toMatchObject({ reason: 'too_large', message: big, to: receiver.pid });
    expect(letters[0]!.error).toBeInstanceOf(MessageTooLargeError);
    expect(letters[1]!.reason).toBe('encode_error');
    expect(letters[1]!.error).toBeInstanceOf(EncodeError);
  });

  it('a remote call whose request is too large rejects MessageTooLargeError; a too-large reply fails the caller with ETOOLARGE', async () => {
    const a = await startNode('alpha', { maxMessageBytes: 1024 });
    const b = await startNode('beta', { maxMessageBytes: 1024 });
    const server = b.spawn(async (self) => {
      for await (const m of self) if (m instanceof CallMessage) m.reply({ text: 'y'.repeat(10_000) });
    });
    const request = await a.call(server, { text: 'x'.repeat(10_000) }, { timeoutMs: 4000 }).catch((e: unknown) => e);
    expect(request).toBeInstanceOf(MessageTooLargeError);
    const reply = (await a.call(server, 'small', { timeoutMs: 4000 }).catch((e: unknown) => e)) as RemoteError;
    expect(reply).toBeInstanceOf(RemoteError);
    expect(reply.code).toBe('ETOOLARGE');
    expect(reply.remoteName).toBe('MessageTooLargeError');
  });

  it('a binary reply over the limit fails the caller at once, as a non-binary one does', async () => {
    // CallMessage.reply(bytes) with bytes over maxMessageBytes throws in the callee, after the
    // call was marked answered and its watcher removed: the caller hears nothing until its timeout.
    const a = await startNode('alpha');
    const b = await startNode('beta', { maxMessageBytes: 1024 });
    const thrown = deferred<unknown>();
    const server = b.spawn(async (self) => {
      const m = (await self.receive()) as CallMessage;
      try {
        m.reply(Buffer.alloc(4096));
      } catch (error) {
        thrown.resolve(error);
      }
      await forever(self);
    });
    const started = performance.now();
    const error = await a.call(server, 'x', { timeoutMs: 1000 }).catch((e: unknown) => e);
    expect(await thrown.promise).toBeInstanceOf(MessageTooLargeError);
    expect(error).not.toBeInstanceOf(TimeoutError);
    expect((error as RemoteError).code).toBe('ETOOLARGE');
    expect(performance.now() - started).toBeLessThan(900);
  });

  it('node.connect(endpoint) returns the other node id', async () => {
    const [a, b] = await twoNodes();
    expect(await a.connect(b.endpoint)).toBe(b.id);
    expect(await b.connect(a.endpoint)).toBe(a.id);
  });

  /**
   * B with one process that holds a call from A and one that A monitors, and a warmed-up
   * channel in both directions (so B's stop drains its queue to A before closing).
   */
  async function stoppingPair() {
    const [a, b] = await twoNodes();
    const holder = b.spawn(async (self) => {
      await self.receive((m) => m instanceof CallMessage); // takes the call, never answers
      await forever(self);
    });
    const watched = b.spawn(echo);
    expect(await a.call(watched, 'warm up')).toEqual({ echo: 'warm up' });
    const down = downOf(a, watched);
    const pending = a.call(holder, 'never answered', { timeoutMs: 4000 }).catch((e: unknown) => e);
    // A round trip behind the Monitor and the Call on the same channel: B holds both now.
    expect(await a.call(watched, 'sync')).toEqual({ echo: 'sync' });
    const nodedown = nextEvent(a, 'nodedown');
    return { a, b, down, pending, nodedown };
  }

  it("stopping node B: A's monitor of a B process fires, and a call pending on B fails with CalleeExitedError", async () => {
    const { b, down, pending, nodedown } = await stoppingPair();
    await b.stop();
    // B ends its processes with 'shutdown' and queues a Down for each watcher before it closes
    // its sockets. The holder exits first, so the Down for the call leaves at once, alone, on
    // B's idle channel; A dispatches it before anything else: the caller gets
    // CalleeExitedError('shutdown'), never NodeDownError.
    const error = await pending;
    expect(error).toBeInstanceOf(CalleeExitedError);
    expect((error as CalleeExitedError).reason).toBe('shutdown');
    // The monitor's Down follows in a second batch. A's receive loop yields to the event loop
    // between batches, and A's own channel to B reports the lost connection in that gap often
    // enough (about 1 run in 7 on an idle machine, almost always when A is busy) that the
    // monitor fires with 'nodedown' and the late 'shutdown' is dropped. That is a bug (see the
    // next test); here either outcome is accepted so that this test stays deterministic.
    expect(['shutdown', 'nodedown']).toContain((await down).reason);
    expect(await nodedown).toEqual({ node: b.id, reason: 'disconnected' });
  });

  it("B's 'shutdown' reaches A's monitor even when A's event loop was busy as B stopped", async () => {
    // Node.stop promises that remote monitors and links "are told" the 'shutdown', and B does
    // send the Downs before closing; they reach A. But A's peer channel to B reports the
    // disconnect independently of the batches still waiting in A's ROUTER, so kernel.onPeerDown
    // fires every watch on B with 'nodedown' first and the late Down is dropped. Busying A's
    // event loop (not a synchronisation sleep: nothing waits on it) while both the Down bytes
    // and the TCP close arrive makes that ordering near certain.
    const { a, b, down, pending, nodedown } = await stoppingPair();
    await b.stop();
    const busyUntil = performance.now() + 30;
    while (performance.now() < busyUntil) {
      // A's event loop is busy (as it would be under load)
    }
    await nodedown;
    const { reason } = await down;
    expect(await pending).toBeInstanceOf(CalleeExitedError);
    // Both Downs did arrive (after the 2 replies A had already counted)...
    await eventually(() => expect(a.stats().envelopesReceived).toBeGreaterThanOrEqual(4), { timeoutMs: 2000 });
    // ...but the monitor's came too late: this is the assertion that fails.
    expect(reason).toBe('shutdown');
  });

  it("a monitor and a call on a node that cannot be reached fail with 'nodedown' / NodeDownError", async () => {
    const a = await startNode('alpha', { connectTimeoutMs: 200 });
    // Nothing listens on port 1, and (outside the ephemeral range) a connection to it can
    // neither be a freshly reused port of another test process nor a TCP self-connect.
    const goneId = 'gone:000000000000@tcp://127.0.0.1:1';
    const nodedown = nextEvent(a, 'nodedown');
    const down = downOf(a, { node: goneId, id: 1 });
    const pending = a.call({ node: goneId, id: 1 }, 'x', { timeoutMs: 4000 }).catch((e: unknown) => e);
    const event = await nodedown;
    expect(event).toEqual({ node: goneId, reason: 'unreachable' });
    expect((await down).reason).toBe('nodedown');
    const error = await pending;
    expect(error).toBeInstanceOf(NodeDownError);
    expect((error as NodeDownError).nodeId).toBe(goneId);
    expect((error as NodeDownError).reason).toBe('unreachable');
  });
});
