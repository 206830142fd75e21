import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nextLine } from '../support/eventually.js';
import { NO_NETNS } from './support/daemons.js';
import { NetnsLab } from './support/netns.js';

const PROBE = fileURLToPath(new URL('../../dist/test/fixtures/udp-probe.js', import.meta.url));
const TCP_PROBE = `const s = require('node:net').connect(Number(process.argv[2]), process.argv[1]);
s.on('connect', () => { console.log('connected'); s.destroy(); });
s.on('error', (e) => { console.log(e.code); });`;

const rootLinks = () => execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).split('\n').map((line) => line.split(':')[1]?.trim()).filter(Boolean).sort();
const namespaces = () => execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });

describe.skipIf(NO_NETNS)('the network-namespace harness', () => {
  let lab: NetnsLab;
  let linksBefore: string[];

  beforeAll(async () => {
    linksBefore = rootLinks();
    lab = await NetnsLab.create({ hosts: 3 });
  });
  afterAll(() => lab?.destroy());

  it('gives every host its own address on one bridge, and touches nothing in the root namespace', async () => {
    const [a, b, c] = lab.hosts;
    expect(new Set(lab.hosts.map((host) => host.address)).size).toBe(3);
    // A TCP connection to a closed port on another host is refused by that host: it was reached.
    const { stdout } = await lab.exec(a!, [process.execPath, '-e', TCP_PROBE, b!.address, '9']);
    expect(stdout.trim()).toBe('ECONNREFUSED');
    const { stdout: own } = await lab.exec(c!, ['ip', '-o', '-4', 'addr', 'show', 'dev', 'eth0']);
    expect(own).toContain(`${c!.address}/24`);
    expect(rootLinks()).toEqual(linksBefore);
  });

  it('carries multicast from one host to the others across the bridge', async () => {
    const [a, b, c] = lab.hosts;
    const group = '239.255.90.99';
    const listeners = await Promise.all([b!, c!].map((host) => lab.startNode(host, PROBE, ['listen', group, '9799', host.address])));
    const sender = await lab.startNode(a!, PROBE, ['send', group, '9799', a!.address, 'hello']);
    for (const listener of listeners) {
      const got = await nextLine<{ got: { from: string; text: string } }>(listener.lines, (line) => line.got, 5000);
      expect(got.got).toEqual({ from: a!.address, text: 'hello' });
    }
    await Promise.all([sender, ...listeners].map((child) => child.stop()));
  });

  it('cuts a host off with its link down and reconnects it with its link up', async () => {
    const [a, b] = lab.hosts;
    await lab.linkDown(b!);
    try {
      // With the link down, b has no route to a at all: the connect fails at once.
      const { stdout } = await lab.exec(b!, [process.execPath, '-e', TCP_PROBE, a!.address, '9']);
      expect(stdout.trim()).toBe('ENETUNREACH');
    } finally {
      await lab.linkUp(b!);
    }
    const { stdout } = await lab.exec(b!, [process.execPath, '-e', TCP_PROBE, a!.address, '9']);
    expect(stdout.trim()).toBe('ECONNREFUSED');
  });

  it('kills what runs inside and deletes every namespace on destroy', async () => {
    const other = await NetnsLab.create({ hosts: 2 });
    const sleeper = await other.startNode(other.hosts[1]!, PROBE, ['listen', '239.255.90.98', '9798', other.hosts[1]!.address]);
    expect(other.pids(other.hosts[1]!)).toContain(sleeper.pid);
    expect(namespaces()).toContain(other.hosts[0]!.name);
    await other.destroy();
    expect(await sleeper.exited).not.toBe(0);
    expect(namespaces()).not.toContain(other.id);
  });
});
