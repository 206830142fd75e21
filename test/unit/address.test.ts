import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../lib/common/errors.js';
import {
  endpointOf,
  formatAddress,
  formatNodeId,
  formatPid,
  isPid,
  isRemoteName,
  isValidNodeName,
  parseNodeId,
  pidEquals,
  pidKey,
} from '../../lib/wire/address.js';

describe('node ids', () => {
  it('formats and parses back name, incarnation and endpoint', () => {
    const id = formatNodeId('alpha', '3f9a0c1d2e4b', 'tcp://127.0.0.1:40111');
    expect(id).toBe('alpha:3f9a0c1d2e4b@tcp://127.0.0.1:40111');
    expect(parseNodeId(id)).toEqual({ name: 'alpha', incarnation: '3f9a0c1d2e4b', endpoint: 'tcp://127.0.0.1:40111' });
    expect(endpointOf(id)).toBe('tcp://127.0.0.1:40111');
  });

  it('round-trips every allowed name character and other endpoint forms', () => {
    const cases: [string, string, string][] = [
      ['A-z_0.9', 'abc', 'tcp://10.0.0.1:5555'],
      ['n'.repeat(64), '000000000000', 'ipc:///tmp/zerocos.sock'],
      ['x', 'ffffffffffff', 'tcp://[::1]:7000'],
    ];
    for (const [name, incarnation, endpoint] of cases) {
      expect(parseNodeId(formatNodeId(name, incarnation, endpoint))).toEqual({ name, incarnation, endpoint });
    }
  });

  it('rejects invalid node names with InvalidArgumentError', () => {
    for (const name of ['', 'has space', 'a:b', 'a@b', 'slash/no', 'é', 'n'.repeat(65)]) {
      expect(isValidNodeName(name)).toBe(false);
      expect(() => formatNodeId(name, 'abc', 'tcp://127.0.0.1:1')).toThrow(InvalidArgumentError);
    }
    expect(isValidNodeName('n'.repeat(64))).toBe(true);
  });

  it('parseNodeId returns undefined for malformed ids', () => {
    for (const bad of [
      '',
      'alpha',
      'alpha:abc', // no endpoint
      '@tcp://127.0.0.1:1', // nothing before @
      'alpha@tcp://127.0.0.1:1', // no incarnation (first ':' is after '@')
      ':abc@tcp://127.0.0.1:1', // empty name
      'alpha:abc@127.0.0.1:1', // endpoint without a scheme
      'alpha:abc@', // empty endpoint
    ]) {
      expect(parseNodeId(bad)).toBeUndefined();
    }
  });

  it('endpointOf throws InvalidArgumentError for a malformed id', () => {
    expect(() => endpointOf('not-a-node-id')).toThrow(InvalidArgumentError);
  });
});

describe('pids and names', () => {
  const nodeA = 'a:000000000001@tcp://127.0.0.1:1';
  const nodeB = 'b:000000000002@tcp://127.0.0.1:2';

  it('isPid accepts {node: string, id: number} only', () => {
    expect(isPid({ node: nodeA, id: 1 })).toBe(true);
    expect(isPid({ node: nodeA, id: 0, extra: true })).toBe(true);
    expect(isPid({ node: nodeA, id: '1' })).toBe(false);
    expect(isPid({ node: 1, id: 1 })).toBe(false);
    expect(isPid({ name: 'srv', node: nodeA })).toBe(false);
    expect(isPid(null)).toBe(false);
    expect(isPid(undefined)).toBe(false);
    expect(isPid('srv')).toBe(false);
    expect(isPid(7)).toBe(false);
  });

  it('isRemoteName accepts {name: string, node: string} only', () => {
    expect(isRemoteName({ name: 'srv', node: nodeA })).toBe(true);
    expect(isRemoteName({ node: nodeA, id: 1 })).toBe(false);
    expect(isRemoteName({ name: 1, node: nodeA })).toBe(false);
    expect(isRemoteName({ name: 'srv' })).toBe(false);
    expect(isRemoteName(null)).toBe(false);
    expect(isRemoteName('srv')).toBe(false);
  });

  it('pidEquals compares node and id', () => {
    expect(pidEquals({ node: nodeA, id: 1 }, { node: nodeA, id: 1 })).toBe(true);
    expect(pidEquals({ node: nodeA, id: 1 }, { node: nodeA, id: 2 })).toBe(false);
    expect(pidEquals({ node: nodeA, id: 1 }, { node: nodeB, id: 1 })).toBe(false);
  });

  it('pidKey is equal exactly when the pids are equal', () => {
    expect(pidKey({ node: nodeA, id: 1 })).toBe(pidKey({ node: nodeA, id: 1 }));
    const keys = new Set([
      pidKey({ node: nodeA, id: 1 }),
      pidKey({ node: nodeA, id: 2 }),
      pidKey({ node: nodeB, id: 1 }),
      pidKey({ node: nodeA, id: 11 }),
      pidKey({ node: nodeA, id: 0 }),
    ]);
    expect(keys.size).toBe(5);
  });

  it('formats pids and addresses for messages and logs', () => {
    expect(formatPid({ node: 'alpha:3f9a0c1d2e4b@tcp://127.0.0.1:1', id: 7 })).toBe('<alpha:3f9a0c.7>');
    expect(formatPid({ node: 'weird', id: 3 })).toBe('<weird.3>');
    expect(formatAddress('srv')).toBe('srv');
    expect(formatAddress({ node: nodeA, id: 2 })).toBe('<a:000000.2>');
    expect(formatAddress({ name: 'srv', node: nodeB })).toBe(`srv@${nodeB}`);
  });
});
