import { Node } from 'zerocos';
import { startReadyChild } from './dist/test/support/child.js';
const node = await Node.start({ name: 'rtt' });
const peer = await startReadyChild('dist/bench/peer.js', ['zerocos']);
const echo = peer.ready.echo;
const s = await new Promise((resolve) => node.spawn(async (self) => {
  const xs = [];
  for (let i = 0; i < 11000; i++) { const t = process.hrtime.bigint(); self.send(echo, { from: self.pid, seq: i }); await self.receive(); if (i >= 1000) xs.push(Number(process.hrtime.bigint() - t) / 1000); }
  resolve(xs);
}));
s.sort((a, b) => a - b);
console.log('zerocos rtt p50', s[s.length >> 1].toFixed(0), 'p99', s[Math.floor(s.length * 0.99)].toFixed(0));
await node.stop(); await peer.stop();
