/**
 * The far side of the messaging benchmark, run as its own OS process.
 *   node dist/bench/peer.js zerocos   — a node with a `sink` (counts messages) and an `echo` process
 *   node dist/bench/peer.js raw       — a bare ROUTER that counts or echoes, the baseline
 * Prints one JSON line {"ready": ...} on stdout, then serves until stdin closes.
 */
import { Router } from 'zeromq';
import { Node, type Pid } from 'zerocos';

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
  const echo = node.spawn(async (self) => {
    for (;;) {
      const message = await self.receive<{ from: Pid }>();
      self.send(message.from, message);
    }
  });
  console.log(JSON.stringify({ ready: { node: node.id, sink, echo } }));
  process.stdin.on('end', () => void node.stop().then(() => process.exit(0)));
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
  console.error('usage: peer.js zerocos|raw');
  process.exit(2);
}
