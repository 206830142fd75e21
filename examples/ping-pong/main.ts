/**
 * Ping-pong between two processes on two nodes in two OS processes.
 *
 *   npm run demo                      (builds, then runs this with 10 000 round trips)
 *   node dist/examples/ping-pong/main.js [rounds]
 *
 * Starts the pong node as a child process, exchanges `rounds` messages with it from a ping
 * process on this node, prints the round-trip rate and latency, and stops both nodes.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Node } from 'zerocos';

const rounds = Number(process.argv[2] ?? 10_000);
if (!Number.isInteger(rounds) || rounds <= 0) {
  console.error('usage: main.js [rounds]  (a positive whole number)');
  process.exit(2);
}

const pongScript = fileURLToPath(new URL('./pong.js', import.meta.url));
const child = spawn(process.execPath, [pongScript], { stdio: ['pipe', 'pipe', 'inherit'] });
const exited = once(child, 'exit');
const firstLine = await new Promise<string>((resolve, reject) => {
  createInterface({ input: child.stdout }).once('line', resolve);
  child.once('exit', (code) => reject(new Error(`pong node exited early (${code})`)));
});
const pongNode = (JSON.parse(firstLine) as { ready: { node: string } }).ready.node;

const node = await Node.start({ name: 'ping' });
console.log(`ping node ${node.id}\npong node ${pongNode} (pid ${child.pid})`);

const latenciesUs = await new Promise<number[]>((resolve, reject) => {
  node.spawn(async (self) => {
    const samples: number[] = [];
    for (let seq = 0; seq < rounds; seq++) {
      const start = process.hrtime.bigint();
      self.send({ name: 'pong', node: pongNode }, { from: self.pid, seq });
      await self.receive({ seq }, { timeoutMs: 5000 });
      samples.push(Number(process.hrtime.bigint() - start) / 1000);
    }
    resolve(samples);
  });
  node.once('crash', ({ reason }) => reject(new Error(`ping crashed: ${JSON.stringify(reason)}`)));
});

const totalS = latenciesUs.reduce((a, b) => a + b, 0) / 1e6;
const sorted = [...latenciesUs].sort((a, b) => a - b);
const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!.toFixed(0);
console.log(`${rounds} round trips in ${totalS.toFixed(2)} s: ${Math.round(rounds / totalS).toLocaleString('en-US')} round trips/s, latency p50 ${at(0.5)} µs, p99 ${at(0.99)} µs`);

await node.stop();
child.stdin.end();
const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
await exited;
clearTimeout(timer);
