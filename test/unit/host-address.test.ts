import { networkInterfaces } from 'node:os';
import { describe, expect, it } from 'vitest';
import { isSettled } from '../../lib/cluster/connect.js';
import type { Member } from '../../lib/cluster/membership.js';
import { defaultAdvertiseHost, isLoopbackHost, isWildcardHost, localAddressToward, splitHostPort } from '../../lib/common/host-address.js';
import { InvalidArgumentError, Node } from '../../lib/index.js';

describe('host addresses', () => {
  it('tells wildcard and loopback hosts apart from others', () => {
    expect(['0.0.0.0', '*', '::', '[::]'].map(isWildcardHost)).toEqual([true, true, true, true]);
    expect(isWildcardHost('10.0.0.1')).toBe(false);
    expect(['127.0.0.1', '127.1.2.3', 'localhost', '::1'].map(isLoopbackHost)).toEqual([true, true, true, true]);
    expect(isLoopbackHost('10.0.0.1')).toBe(false);
  });

  it('splits endpoints and host:port pairs', () => {
    expect(splitHostPort('tcp://10.1.2.3:9740')).toEqual({ host: '10.1.2.3', port: '9740' });
    expect(splitHostPort('127.0.0.1:*')).toEqual({ host: '127.0.0.1', port: '*' });
    expect(splitHostPort('tcp://[::1]:5')).toEqual({ host: '[::1]', port: '5' });
    expect(splitHostPort('ipc:///tmp/x')).toBeUndefined();
  });

  it('finds the local address on the route to a host without sending anything (loopback to loopback)', async () => {
    expect(await localAddressToward('127.0.0.1', 9)).toBe('127.0.0.1');
  });

  it('advertises the first non-loopback IPv4 address for a wildcard bind, or refuses naming the flag', () => {
    const external = Object.values(networkInterfaces()).flat().find((a) => a?.family === 'IPv4' && !a.internal);
    if (external) expect(defaultAdvertiseHost()).toBe(external.address);
    else expect(() => defaultAdvertiseHost()).toThrow(/--advertise/);
  });

  it('puts the advertised host, with the bound port, into the node id', async () => {
    const node = await Node.start({ name: 'adv', bind: 'tcp://127.0.0.1:*', advertise: '127.0.0.9' });
    try {
      expect(node.id).toMatch(/^adv:[0-9a-f]+@tcp:\/\/127\.0\.0\.9:\d+$/);
      expect(node.endpoint).toMatch(/^tcp:\/\/127\.0\.0\.9:\d+$/);
    } finally {
      await node.stop();
    }
  });

  it('refuses to advertise a wildcard host', async () => {
    await expect(Node.start({ bind: 'tcp://127.0.0.1:*', advertise: '0.0.0.0' })).rejects.toBeInstanceOf(InvalidArgumentError);
  });
});

describe('a settled view', () => {
  const member = (status: Member['status'], info?: unknown): Member => ({
    nodeId: 'd:1@tcp://127.0.0.1:1', name: 'd', endpoint: 'tcp://127.0.0.1:1', incarnation: '1', status, since: 0, lastHeardAt: 0, info,
  });
  const offer = (workers: number, cpu: number) => ({ workers: Array.from({ length: workers }, (_, i) => `w:${i}@tcp://127.0.0.1:${i + 2}`), resources: { cpu } });

  it('waits for members still joining and for daemons whose workers are not all ready', () => {
    expect(isSettled([member('up', offer(2, 2)), member('up')])).toBe(true);
    expect(isSettled([member('up', offer(2, 2)), member('joining')])).toBe(false);
    expect(isSettled([member('up', offer(1, 2))])).toBe(false);
    expect(isSettled([member('down', offer(0, 2))])).toBe(true);
  });
});
