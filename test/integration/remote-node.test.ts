import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { Dealer } from 'zeromq';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  CallMessage,
  DownMessage,
  ExitMessage,
  Node,
  NodeDownError,
  type DeadLetter,
  type Pid,
  type ProtocolError,
} from '../../lib/index.js';
import { startReadyChild, type ReadyChild } from '../support/child.js';
import { eventually, nextLine } from '../support/eventually.js';

// The child runs compiled code: `npm test` builds first.
const PEER = fileURLToPath(new URL('../../dist/test/fixtures/kernel-peer.js', import.meta.url));

interface PeerReady {
  node: string;
  control: Pid;
}

describe('two nodes in two OS processes', () => {
  let node: Node;
  let peer: ReadyChild<PeerReady>;

  beforeEach(async () => {
    node = await Node.start({ name: 'test', connectTimeoutMs: 1500 });
    peer = await startReadyChild<PeerReady>(PEER, ['peer']);
  });

  afterEach(async () => {
    await node.stop();
    await peer.stop();
  });

  const control = <T>(request: unknown): Promise<T> => node.call<T>(peer.ready.control, request);

  it('exchanges ping-pong messages in order between processes on the two nodes', async () => {
    const echo = await control<Pid>(['spawn-echo']);
    const received = await new Promise<number[]>((resolve) => {
      node.spawn(async (self) => {
        for (let seq = 0; seq < 200; seq++) self.send(echo, { from: self.pid, seq });
        const seqs: number[] = [];
        for (let i = 0; i < 200; i++) seqs.push((await self.receive<{ seq: number }>()).seq);
        resolve(seqs);
      });
    });
    expect(received).toEqual(Array.from({ length: 200 }, (_, i) => i));
  });

  it('reaches a remote process by {name, node} and resolves the name with lookup', async () => {
    const echo = await control<Pid>(['spawn-echo', 'echo']);
    expect(await node.lookup('echo', peer.ready.node)).toEqual(echo);
    expect(await node.lookup('nobody', peer.ready.node)).toBeUndefined();
    expect(await node.call({ name: 'echo', node: peer.ready.node }, { hello: 'world' })).toEqual({ hello: 'world' });
    expect(await node.connect(peer.ready.node.slice(peer.ready.node.indexOf('@') + 1))).toBe(peer.ready.node);
  });

  it('fires a monitor when the remote process exits normally or by error', async () => {
    const waiter = await control<Pid>(['spawn-waiter']);
    const crasher = await control<Pid>(['spawn-crasher']);
    const normal = new Promise<DownMessage>((resolve) => node.monitor(waiter, resolve));
    const crashed = new Promise<DownMessage>((resolve) => node.monitor(crasher, resolve));
    // The monitors travel ahead of the messages on the same ordered path.
    node.send(waiter, 'stop');
    node.send(crasher, 'crash');
    expect((await normal).reason).toBe('normal');
    expect((await crashed).reason).toMatchObject({ name: 'Error', message: 'crashed on request', nodeId: peer.ready.node });
  });

  it('tells a remote monitor when a local process exits', async () => {
    const local = node.spawn(async (self) => void (await self.receive('finish')));
    await control(['monitor', local]);
    node.send(local, 'finish');
    const line = await nextLine<{ down: { reason: unknown } }>(peer.lines, (l) => 'down' in l);
    expect(line.down.reason).toBe('normal');
  });

  it('fails monitors, links and pending calls with nodedown when the remote OS process is SIGKILLed', async () => {
    const echo = await control<Pid>(['spawn-echo']);
    const waiter = await control<Pid>(['spawn-waiter']);
    const down = new Promise<DownMessage>((resolve) => node.monitor(waiter, resolve));
    const exitReason = new Promise<unknown>((resolve) => {
      node.spawn(async (self) => {
        self.trapExit();
        self.link(echo);
        const exit = await self.receive((m) => m instanceof ExitMessage);
        resolve((exit as ExitMessage).reason);
      });
    });
    // A call the echo will never answer (it echoes only plain messages... and calls; so call the waiter).
    const pending = node.call(waiter, 'never answered', { timeoutMs: 10_000 });
    const nodedown = once(node, 'nodedown');

    peer.child.kill('SIGKILL');

    expect((await down).reason).toBe('nodedown');
    expect(await exitReason).toBe('nodedown');
    await expect(pending).rejects.toBeInstanceOf(NodeDownError);
    const [event] = await nodedown;
    expect(event.node).toBe(peer.ready.node);
  });

  it('returns a message sent to a dead node as a dead letter', async () => {
    const echo = await control<Pid>(['spawn-echo']);
    peer.child.kill('SIGKILL');
    await once(node, 'nodedown');
    const letters: DeadLetter[] = [];
    node.on('deadLetter', (letter) => letters.push(letter));
    node.send(echo, { lost: false });
    // Nothing answers on the old endpoint, so the new connection attempt times out (1.5 s here).
    await eventually(() => expect(letters).toHaveLength(1));
    expect(letters[0]).toMatchObject({ reason: 'nodedown', to: echo, message: { lost: false } });
  });

  it('reports a message for a pid that does not exist on the remote node as a noproc dead letter', async () => {
    const letter = once(node, 'deadLetter');
    node.send({ node: peer.ready.node, id: 424242 }, 'hello?');
    const [dead] = (await letter) as [DeadLetter];
    expect(dead).toMatchObject({ reason: 'noproc', message: 'hello?', to: { node: peer.ready.node, id: 424242 } });
  });

  it('answers calls made from a remote node with binary payloads as their own frames', async () => {
    const echo = await control<Pid>(['spawn-echo']);
    const payload = Buffer.alloc(1024 * 1024, 7);
    const reply = await node.call<Uint8Array>(echo, payload);
    expect(Buffer.from(reply).equals(payload)).toBe(true);
  });
});

describe('a node under garbage from a raw ZeroMQ peer', () => {
  let node: Node;
  let raw: Dealer;

  beforeEach(async () => {
    node = await Node.start({ name: 'target', maxMessageBytes: 64 * 1024 });
    raw = new Dealer({ linger: 0 });
    raw.connect(node.endpoint);
  });

  afterEach(async () => {
    raw.close();
    await node.stop();
  });

  it('drops and counts malformed, truncated, wrong-version and oversize frames and keeps serving', async () => {
    const errors: ProtocolError[] = [];
    node.on('protocolError', (error) => errors.push(error));
    const header = Buffer.from([0x5a, 0x43, 2, 1]);
    const garbage: Buffer[][] = [
      [Buffer.from('hello, is this zerocos?')],
      [Buffer.from([0x00, 0x00, 1, 1]), Buffer.from([0x90])],
      [Buffer.from([0x5a, 0x43, 99, 1]), Buffer.from([0x92, 0xa0, 0xa0])],
      [header],
      [header, Buffer.from([0xdc, 0xff])],
      [header, Buffer.from([0x93, 0xa1, 0x61, 0xa0, 0x94, 0x63, 1, 0, 0])],
      [header, Buffer.alloc(100 * 1024, 0x61)],
    ];
    for (const frames of garbage) await raw.send(frames);

    await eventually(() => expect(node.stats().framesDropped).toBe(garbage.length));
    expect(node.stats().framesDroppedByReason).toEqual({ magic: 1, version: 1, truncated: 2, decode: 1, shape: 1, oversize: 1 });
    expect(errors.map((e) => e.code)).toEqual(Array(garbage.length).fill('EPROTO'));

    // Still serving: a well-formed call from another node works.
    const echo = node.spawn(async (self) => {
      for await (const m of self) if (m instanceof CallMessage) m.reply(m.request);
    });
    const other = await Node.start({ name: 'other' });
    try {
      expect(await other.call(echo, 'still here')).toBe('still here');
    } finally {
      await other.stop();
    }
  });
});
