/**
 * Part of `npm run bench -- collective`: would `ipc://` between ranks on one host narrow the
 * round trip? Workers bind TCP (the worker pool gives them no other endpoint), so ranks cannot
 * use ipc today; this measures the two layers below them instead, each over loopback TCP and over
 * an ipc socket, against a peer in another OS process (bench/collective-peer.ts):
 * - zerocos: a process on a node of this process sends `{from}` to the peer's echo process and
 *   receives it back (send + receive, the path a rank's message takes minus its port);
 * - raw zeromq.js: a DEALER sends one small frame to the peer's ROUTER, which echoes it.
 */
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Dealer } from 'zeromq';
import { Node, type Pid } from '../lib/index.js';

const PEER = fileURLToPath(new URL('./collective-peer.js', import.meta.url));

export interface TransportRoundTrips {
  zerocosUs: number;
  rawUs: number;
}

/** One round trip of each kind over one transport, and how to close it all. */
interface Link {
  zerocos(): Promise<unknown>;
  raw(): Promise<unknown>;
  close(): Promise<void>;
}

/** A peer process and this process's ends, both bound on `kind`. */
async function open(kind: 'tcp' | 'ipc'): Promise<Link> {
  const dir = tmpdir();
  const tag = `zerocos-bench-${process.pid}-${kind}`;
  const bind = (name: string) => (kind === 'tcp' ? 'tcp://127.0.0.1:*' : `ipc://${join(dir, `${tag}-${name}.sock`)}`);
  const child = spawn(process.execPath, [PEER, bind('peer'), bind('raw')], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const dealer = new Dealer({ linger: 0 });
  let node: Node | undefined;
  const close = async () => {
    dealer.close();
    await node?.stop();
    child.stdin!.end();
    await exited;
    if (kind === 'ipc') for (const name of ['peer', 'raw', 'self']) rmSync(join(dir, `${tag}-${name}.sock`), { force: true });
  };
  try {
    const lines = createInterface({ input: child.stdout! });
    const ready = await new Promise<{ echo: Pid; raw: string }>((resolve, reject) => {
      lines.once('line', (line) => resolve((JSON.parse(line) as { ready: { echo: Pid; raw: string } }).ready));
      child.once('exit', (code) => reject(new Error(`collective-peer exited (${code}) before it was ready`)));
    });
    node = await Node.start({ name: 'collective-bench', bind: bind('self') });
    // A process of this node does each zerocos round trip when handed (by reference) the function to call after it.
    const pinger = node.spawn(async (self) => {
      for (;;) {
        const done = await self.receive<() => void>();
        self.send(ready.echo, { from: self.pid });
        await self.receive();
        done();
      }
    });
    dealer.connect(ready.raw);
    const frame = Buffer.from('12345678');
    return {
      zerocos: () => new Promise<void>((resolve) => node!.send(pinger, resolve)),
      raw: async () => {
        await dealer.send(frame);
        await dealer.receive();
      },
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

/**
 * The p50 round trips of zerocos send/receive and of raw zeromq.js over tcp and over ipc. The
 * four are measured in turns, `reps` each in all, so that the machine's load weighs on each alike.
 */
export async function transportRoundTrips(reps: number): Promise<Record<'tcp' | 'ipc', TransportRoundTrips>> {
  const links = { tcp: await open('tcp'), ipc: await open('ipc') };
  try {
    const samples = { tcp: { zerocos: [] as number[], raw: [] as number[] }, ipc: { zerocos: [] as number[], raw: [] as number[] } };
    const BLOCKS = 8;
    for (let block = -1; block < BLOCKS; block++) {
      for (const kind of ['tcp', 'ipc'] as const) {
        for (const which of ['zerocos', 'raw'] as const) {
          for (let i = 0; i < Math.ceil(reps / BLOCKS); i++) {
            const t = performance.now();
            await links[kind][which]();
            // Block -1 warms up.
            if (block >= 0) samples[kind][which].push(performance.now() - t);
          }
        }
      }
    }
    const p50 = (times: number[]) => Math.round(times.sort((a, b) => a - b)[times.length >> 1]! * 1000);
    return {
      tcp: { zerocosUs: p50(samples.tcp.zerocos), rawUs: p50(samples.tcp.raw) },
      ipc: { zerocosUs: p50(samples.ipc.zerocos), rawUs: p50(samples.ipc.raw) },
    };
  } finally {
    await links.tcp.close();
    await links.ipc.close();
  }
}
