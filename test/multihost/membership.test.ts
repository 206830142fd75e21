import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { NetnsLab, type NetnsHost } from './support/netns.js';
import {
  NO_NETNS,
  PORT,
  allSeeEachOther,
  convergence,
  hostPort,
  scratchDir,
  secretFile,
  startDaemon,
  type DaemonOptions,
  type HostDaemon,
} from './support/daemons.js';

// Three hosts, one daemon each; every test starts its own daemons on them and stops them after.
describe.skipIf(NO_NETNS)('daemons on three hosts (network namespaces)', { timeout: 60_000 }, () => {
  let lab: NetnsLab;
  let scratch: ReturnType<typeof scratchDir>;
  let secret: string;
  const daemons: HostDaemon[] = [];

  beforeAll(async () => {
    scratch = scratchDir();
    secret = secretFile(scratch.dir, 'multihost-membership-secret');
    lab = await NetnsLab.create({ hosts: 3 });
  });
  afterEach(async () => {
    await Promise.all(daemons.splice(0).map((daemon) => daemon.stop()));
  });
  afterAll(async () => {
    await lab?.destroy();
    scratch?.remove();
  });

  // No workers: membership is what these tests are about, and each ready line then comes before any peer:up.
  const start = async (lab: NetnsLab, host: NetnsHost, options: DaemonOptions) => {
    const daemon = await startDaemon(lab, host, { cpus: 0, ...options });
    daemons.push(daemon);
    return daemon;
  };

  it('find each other by multicast discovery with no seeds, each advertising its own address', async () => {
    const group = await Promise.all(lab.hosts.map((host) => start(lab, host, { secretFile: secret, discovery: true })));
    for (const daemon of group) expect(daemon.ready.endpoint).toBe(`tcp://${daemon.host.address}:${PORT}`);
    const { events, at } = await allSeeEachOther(group);
    convergence('3 hosts by discovery', group, at);
    expect(events).toHaveLength(6);
  });

  it('join through seeds alone with discovery off; the two that share a seed learn each other from it', async () => {
    const [h0, h1, h2] = lab.hosts;
    const seed = await start(lab, h0!, { secretFile: secret, discovery: false });
    const others = await Promise.all([h1!, h2!].map((host) => start(lab, host, { secretFile: secret, peers: [hostPort(seed)] })));
    const { at } = await allSeeEachOther([seed, ...others]);
    convergence('3 hosts through one seed', [seed, ...others], at);
  });

  it('reach a daemon bound to 0.0.0.0 at the address it advertises, through seeds', async () => {
    const [h0, h1, h2] = lab.hosts;
    const wildcard = await start(lab, h0!, { secretFile: secret, bind: '0.0.0.0', discovery: false, extra: ['--advertise', h0!.address] });
    expect(wildcard.ready.node).toContain(`@tcp://${h0!.address}:${PORT}`);
    const others = await Promise.all([h1!, h2!].map((host) => start(lab, host, { secretFile: secret, peers: [`${h0!.address}:${PORT}`] })));
    await allSeeEachOther([wildcard, ...others]);
  });

  it('find a daemon bound to 0.0.0.0 with --advertise by multicast discovery', async () => {
    const [h0, h1, h2] = lab.hosts;
    const wildcard = await start(lab, h0!, { secretFile: secret, bind: '0.0.0.0', discovery: true, extra: ['--advertise', h0!.address] });
    const others = await Promise.all([h1!, h2!].map((host) => start(lab, host, { secretFile: secret, discovery: true })));
    await allSeeEachOther([wildcard, ...others]);
  });
});
