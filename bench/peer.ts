/**
 * The far side of the messaging benchmark, run as its own OS process.
 *   node dist/bench/peer.js zerocos   — a node with a `sink` (counts messages) and an `echo` process
 *   node dist/bench/peer.js raw       — a bare ROUTER that counts or echoes, the baseline
 *   node dist/bench/peer.js tcp       — a plain `net` server echoing length-prefixed msgpack requests
 * Prints one JSON line {"ready": ...} on stdout, then serves until stdin closes.
 */
import { Router } from 'zeromq';
import { CallMessage, Node, type Pid } from 'zerocos';
import { startTcpEchoServer } from './tcp-baseline.js';

const mode = process.argv[2];

if (mode === 'zerocos') {
  const node = await Node.start({ name: 'bench-peer' });
  const sink = node.spawn(async (self) => {
    for (;;) {
      const { count, reportTo } = await self.receive<{ count: number; reportTo: Pid }>();
      for (let i = 0; i < count; i++) await self.receive();
      self.send(reportTo, 'done');
    }
  });
  // Answers every call with its request: the far side of the request/response figures.
  const server = node.spawn(async (self) => {
    for (;;) {
      const message = await self.receive();
      if (message instanceof CallMessage) message.reply(message.request);
    }
  });
  const echo = node.spawn(async (self) => {
    for (;;) {
      const message = await self.receive<{ from: Pid }>();
      self.send(message.from, message);
    }
  });
  console.log(JSON.stringify({ ready: { node: node.id, sink, echo, server } }));
  process.stdin.on('end', () => void node.stop().then(() => process.exit(0)));
  process.stdin.resume();
} else if (mode === 'tcp') {
  const { server, port } = await startTcpEchoServer();
  console.log(JSON.stringify({ ready: { port } }));
  process.stdin.on('end', () => {
    server.close();
    process.exit(0);
  });
  process.stdin.resume();
} else if (mode === 'raw') {
  const router = new Router({ linger: 0 });
  await router.bind('tcp://127.0.0.1:*');
  console.log(JSON.stringify({ ready: { endpoint: router.lastEndpoint } }));
  process.stdin.on('end', () => {
    router.close();
    process.exit(0);
  });
  process.stdin.resume();
  // Frame "c<N>" starts a count of N messages answered by "done"; "e..." frames are echoed.
  let remaining = 0;
  for await (const [routingId, frame] of router) {
    if (remaining > 0) {
      if (--remaining === 0) await router.send([routingId!, 'done']);
    } else if (frame![0] === 0x63 /* c */) {
      remaining = Number(frame!.subarray(1).toString());
    } else {
      await router.send([routingId!, frame!]);
    }
  }
} else {
  console.error('usage: peer.js zerocos|raw|tcp');
  process.exit(2);
}
