/**
 * The far side of the collective benchmark's transport comparison, run as its own OS process:
 *
 *   node dist/bench/collective-peer.js <zerocos bind> <raw bind>
 *
 * A zerocos node bound at the first endpoint (`tcp://127.0.0.1:*` or `ipc:///path`) with an echo
 * process (sends every message back to its `from`), and a bare zeromq.js ROUTER at the second
 * that echoes every frame. Prints {"ready": {"echo": pid, "raw": endpoint}}, then serves until
 * stdin closes.
 */
import { Router } from 'zeromq';
import { Node, type Pid } from 'zerocos';

const [zerocosBind, rawBind] = process.argv.slice(2);
const node = await Node.start({ name: 'collective-peer', bind: zerocosBind! });
const echo = node.spawn(async (self) => {
  for (;;) {
    const message = await self.receive<{ from: Pid }>();
    self.send(message.from, message);
  }
});
const router = new Router({ linger: 0 });
await router.bind(rawBind!);
console.log(JSON.stringify({ ready: { echo, raw: router.lastEndpoint } }));
process.stdin.on('end', () => {
  router.close();
  void node.stop().then(() => process.exit(0));
});
process.stdin.resume();
for await (const frames of router) await router.send(frames);
