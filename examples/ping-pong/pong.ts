/**
 * The pong node: a zerocos node in its own OS process with one process registered as `pong`,
 * which answers every {from, seq} with {seq}. Prints {"ready": {"node": ...}} and runs until
 * its stdin closes.
 */
import { Node, type Pid } from 'zerocos';

const node = await Node.start({ name: 'pong' });
node.spawn(
  async (self) => {
    for await (const { from, seq } of self as AsyncIterable<{ from: Pid; seq: number }>) self.send(from, { seq });
  },
  { name: 'pong' },
);
console.log(JSON.stringify({ ready: { node: node.id } }));
process.stdin.on('end', () => void node.stop().then(() => process.exit(0)));
process.stdin.resume();
