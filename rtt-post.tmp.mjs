import { Dealer, Router } from 'zeromq';
import { fork } from 'node:child_process';
if (process.argv[2] === 'server') {
  const spin = Number(process.argv[4]);
  const r = new Router(); await r.bind(process.argv[3]); process.send('up');
  for await (const [id, m] of r) { await r.send([id, m]); const until = performance.now() + spin / 1000; while (performance.now() < until); }
} else {
  const spins = [0, 10, 20, 0];
  const eps = spins.map((s, i) => `tcp://127.0.0.1:${45880 + i}`);
  const children = eps.map((ep, i) => fork('/work/main/rtt-post.tmp.mjs', ['server', ep, String(spins[i])]));
  await Promise.all(children.map((c) => new Promise((r) => c.once('message', r))));
  const dealers = eps.map((ep) => { const d = new Dealer(); d.connect(ep); return d; });
  const msg = Buffer.alloc(100);
  const times = eps.map(() => []);
  for (let block = 0; block < 40; block++) for (const [i, d] of dealers.entries()) for (let k = 0; k < 250; k++) { const t = process.hrtime.bigint(); await d.send(msg); await d.receive(); times[i].push(Number(process.hrtime.bigint() - t) / 1000); }
  const med = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
  eps.forEach((ep, i) => console.log('server spins', spins[i], 'us after each send: rtt p50', med(times[i].slice(250)).toFixed(1), 'us'));
  for (const c of children) c.kill(); for (const d of dealers) d.close();
}
