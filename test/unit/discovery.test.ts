import { createSocket, type Socket } from 'node:dgram';
import { on } from 'node:events';
import { randomBytes } from 'node:crypto';
import { Packr } from 'msgpackr';
import { afterEach, describe, expect, it } from 'vitest';
import { InvalidArgumentError, NodeStoppedError, ProtocolError } from '../../lib/common/errors.js';
import {
  BEACON_MAGIC,
  BEACON_VERSION,
  decodeBeacon,
  deriveBeaconKey,
  Discovery,
  encodeBeacon,
  jitterMs,
  MAX_BEACON_BYTES,
  type Beacon,
  type DiscoveredBeacon,
  type DiscoveryOptions,
} from '../../lib/cluster/discovery.js';
import { eventually } from '../support/eventually.js';

// Multicast stays on this host: group joined on 127.0.0.1, TTL 0. A random port and cluster
// name per run keep parallel runs of this file apart.
const GROUP = '239.255.90.67';
const BASE_PORT = 20000 + Math.floor(Math.random() * 39000);
const CLUSTER = `test-${randomBytes(6).toString('hex')}`;
const WAIT_MS = 1500;

const packr = new Packr({ useRecords: false });
const header = (version = BEACON_VERSION) => Buffer.from([...Buffer.from(BEACON_MAGIC, 'latin1'), version]);
const nodeId = (name: string) => `${name}:${randomBytes(6).toString('hex')}@tcp://127.0.0.1:1`;

let nextPort = BASE_PORT;
const cleanup: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

/** A started Discovery on `port`, stopped after the test. */
async function startDiscovery(name: string, port: number, options: DiscoveryOptions = {}): Promise<{ discovery: Discovery; id: string }> {
  const id = nodeId(name);
  const discovery = new Discovery(() => ({ nodeId: id }), { group: GROUP, port, intervalMs: 50, cluster: CLUSTER, ...options });
  await discovery.start();
  cleanup.push(() => discovery.stop());
  return { discovery, id };
}

/** The next `discovered` event whose beacon matches, or a rejection after `timeoutMs`. */
async function nextDiscovered(discovery: Discovery, match: (beacon: DiscoveredBeacon) => boolean, timeoutMs = WAIT_MS): Promise<DiscoveredBeacon> {
  for await (const [beacon] of on(discovery, 'discovered', { signal: AbortSignal.timeout(timeoutMs) })) {
    if (match(beacon as DiscoveredBeacon)) return beacon as DiscoveredBeacon;
  }
  throw new Error('unreachable');
}

/** A plain UDP socket with the same host-only multicast settings, to inject datagrams. */
async function rawSender(): Promise<(datagram: Uint8Array, port: number) => Promise<void>> {
  const socket: Socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  socket.setMulticastInterface('127.0.0.1');
  socket.setMulticastTTL(0);
  socket.setMulticastLoopback(true);
  cleanup.push(() => new Promise<void>((resolve) => socket.close(() => resolve())));
  return (datagram, port) =>
    new Promise<void>((resolve, reject) => socket.send(datagram, port, GROUP, (error) => (error ? reject(error) : resolve())));
}

describe('beacon codec', () => {
  it('round-trips a beacon and ignores unknown keys', () => {
    const beacon: Beacon = { nodeId: nodeId('a'), cluster: CLUSTER, seq: 7 };
    expect(decodeBeacon(encodeBeacon(beacon))).toEqual(beacon);
    const extended = Buffer.concat([header(), packr.pack({ ...beacon, later: [1, 2] })]);
    expect(decodeBeacon(extended)).toEqual(beacon);
  });

  it.each([
    ['oversize', Buffer.alloc(MAX_BEACON_BYTES + 1, 0x5a)],
    ['truncated', header()],
    ['truncated', Buffer.from('ZC')],
    ['magic', Buffer.concat([Buffer.from('XCB\x01', 'latin1'), packr.pack({})])],
    ['version', Buffer.concat([header(3), packr.pack({})])],
    ['truncated', encodeBeacon({ nodeId: nodeId('a'), cluster: CLUSTER, seq: 1 }).subarray(0, 20)],
    ['decode', Buffer.concat([header(), packr.pack({}), packr.pack({})])],
    ['decode', Buffer.concat([header(), Buffer.from([0xd4, 0x33, 0x00])])],
    ['shape', Buffer.concat([header(), Buffer.from([0xc1])])],
    ['shape', Buffer.concat([header(), packr.pack(['a', CLUSTER, 1])])],
    ['shape', Buffer.concat([header(), packr.pack({ nodeId: 'not-a-node-id', cluster: CLUSTER, seq: 1 })])],
    ['shape', Buffer.concat([header(), packr.pack({ nodeId: nodeId('a'), cluster: '', seq: 1 })])],
    ['shape', Buffer.concat([header(), packr.pack({ nodeId: nodeId('a'), cluster: CLUSTER, seq: -1 })])],
  ])('rejects a %s datagram with ProtocolError', (reason, datagram) => {
    let caught: unknown;
    try {
      decodeBeacon(datagram);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ProtocolError);
    expect((caught as ProtocolError).reason).toBe(reason);
  });

  it('refuses to encode an invalid beacon', () => {
    expect(() => encodeBeacon({ nodeId: 'x', cluster: CLUSTER, seq: 1 })).toThrow(InvalidArgumentError);
  });
});

describe('authenticated beacons', () => {
  const key = deriveBeaconKey('the secret', CLUSTER);
  const beacon: Beacon = { nodeId: nodeId('a'), cluster: CLUSTER, seq: 7 };

  it('round-trip under the cluster key, with the time they were sent', () => {
    const decoded = decodeBeacon(encodeBeacon(beacon, key, 1_000_000), key, 1_000_500);
    expect(decoded).toEqual({ ...beacon, at: 1_000_000 });
  });

  it('are refused under another key or secret, tampered, stale, or unauthenticated', () => {
    const reason = (fn: () => unknown) => {
      try {
        fn();
      } catch (error) {
        return (error as ProtocolError).reason;
      }
      return 'accepted';
    };
    const datagram = encodeBeacon(beacon, key, 1_000_000);
    expect(reason(() => decodeBeacon(datagram, deriveBeaconKey('a guess', CLUSTER), 1_000_000))).toBe('auth');
    expect(reason(() => decodeBeacon(datagram, deriveBeaconKey('the secret', `${CLUSTER}-x`), 1_000_000))).toBe('auth');
    const tampered = Buffer.from(datagram);
    tampered[tampered.length - 1] ^= 1;
    expect(reason(() => decodeBeacon(tampered, key, 1_000_000))).toBe('auth');
    expect(reason(() => decodeBeacon(datagram, key, 1_000_000 + 61_000))).toBe('stale');
    expect(reason(() => decodeBeacon(encodeBeacon(beacon), key))).toBe('auth');
    expect(reason(() => decodeBeacon(datagram))).toBe('auth');
  });

  it('let keyed instances find each other, and drop forged beacons without reporting them', async () => {
    const port = nextPort++;
    const a = await startDiscovery('a', port, { secret: 'the secret' });
    const b = await startDiscovery('b', port, { secret: 'the secret' });
    await nextDiscovered(a.discovery, (found) => found.nodeId === b.id);
    const forged: string[] = [];
    a.discovery.on('discovered', (found) => {
      if (found.nodeId !== b.id) forged.push(found.nodeId);
    });
    const send = await rawSender();
    const guessed = deriveBeaconKey('a guess', CLUSTER);
    for (let i = 0; i < 50; i++) await send(encodeBeacon({ nodeId: nodeId(`forged${i}`), cluster: CLUSTER, seq: 1 }, guessed), port);
    await eventually(() => expect(a.discovery.stats().dropped.auth).toBe(50), { timeoutMs: WAIT_MS });
    expect(forged).toEqual([]);
  });
});

describe('jitterMs', () => {
  it('stays within ±20% of the interval', () => {
    expect(jitterMs(1000, () => 0)).toBe(800);
    expect(jitterMs(1000, () => 0.5)).toBe(1000);
    expect(jitterMs(1000, () => 0.25)).toBe(900);
    expect(jitterMs(1000, () => 1 - Number.EPSILON)).toBeCloseTo(1200, 6);
    for (let i = 0; i < 10_000; i++) {
      const value = jitterMs(50);
      expect(value).toBeGreaterThanOrEqual(40);
      expect(value).toBeLessThanOrEqual(60);
    }
  });
});

describe('Discovery', () => {
  it('rejects options that would leave the host or make no sense', () => {
    const local = () => ({ nodeId: nodeId('a') });
    expect(() => new Discovery(local, { group: '10.0.0.1' })).toThrow(InvalidArgumentError);
    expect(() => new Discovery(local, { interface: 'lo' })).toThrow(InvalidArgumentError);
    expect(() => new Discovery(local, { ttl: 256 })).toThrow(InvalidArgumentError);
    expect(() => new Discovery(local, { intervalMs: 0 })).toThrow(InvalidArgumentError);
    expect(() => new Discovery(local, { cluster: '' })).toThrow(InvalidArgumentError);
  });

  it('lets two instances on one port discover each other and ignores its own beacons', async () => {
    const port = nextPort++;
    const a = await startDiscovery('a', port);
    const b = await startDiscovery('b', port);
    const [fromB, fromA] = await Promise.all([
      nextDiscovered(a.discovery, (beacon) => beacon.nodeId === b.id),
      nextDiscovered(b.discovery, (beacon) => beacon.nodeId === a.id),
    ]);
    expect(fromB).toMatchObject({ cluster: CLUSTER, address: '127.0.0.1' });
    expect(fromB.seq).toBeGreaterThanOrEqual(1);
    expect(fromA.address).toBe('127.0.0.1');
    await eventually(() => expect(a.discovery.stats().ownBeacons).toBeGreaterThan(0), { timeoutMs: WAIT_MS });
    expect(a.discovery.stats().dropped).toEqual({ oversize: 0, truncated: 0, magic: 0, version: 0, decode: 0, shape: 0, cluster: 0, auth: 0, stale: 0 });
  });

  it('sends a beacon on announce() and reports it once per datagram', async () => {
    const port = nextPort++;
    const a = await startDiscovery('a', port, { intervalMs: 60_000 });
    const b = await startDiscovery('b', port, { intervalMs: 60_000 });
    // Each start sent one beacon; with the timer far away, only announce() sends more.
    await eventually(() => expect(a.discovery.stats().discovered + a.discovery.stats().ownBeacons).toBe(2), { timeoutMs: WAIT_MS });
    const seen: number[] = [];
    a.discovery.on('discovered', (beacon) => seen.push(beacon.seq));
    b.discovery.announce();
    b.discovery.announce();
    await eventually(() => expect(seen).toEqual([2, 3]), { timeoutMs: WAIT_MS });
    expect(a.discovery.stats().discovered).toBe(3);
  });

  it('ignores and counts beacons of another cluster', async () => {
    const port = nextPort++;
    const a = await startDiscovery('a', port);
    const seen: string[] = [];
    a.discovery.on('discovered', (beacon) => seen.push(beacon.nodeId));
    await startDiscovery('other', port, { cluster: `${CLUSTER}-other` });
    await eventually(() => expect(a.discovery.stats().dropped.cluster).toBeGreaterThanOrEqual(2), { timeoutMs: WAIT_MS });
    expect(seen).toEqual([]);
  });

  it('drops and counts garbage datagrams by reason and keeps discovering', async () => {
    const port = nextPort++;
    const a = await startDiscovery('a', port, { intervalMs: 60_000 });
    const protocolErrors: string[] = [];
    a.discovery.on('protocolError', (error) => protocolErrors.push(error.reason));
    const send = await rawSender();
    const valid = encodeBeacon({ nodeId: nodeId('raw'), cluster: CLUSTER, seq: 1 });
    await send(Buffer.concat([Buffer.from('NOPE', 'latin1'), valid.subarray(4)]), port);
    await send(Buffer.concat([header(9), valid.subarray(4)]), port);
    await send(valid.subarray(0, valid.length - 5), port);
    await send(Buffer.concat([valid, Buffer.alloc(MAX_BEACON_BYTES)]), port);
    await send(Buffer.concat([header(), packr.pack({ hello: 'world' })]), port);
    await send(Buffer.concat([header(), Buffer.from([0xd4, 0x33, 0x00])]), port);

    const rawId = nodeId('raw');
    const discovered = nextDiscovered(a.discovery, (beacon) => beacon.nodeId === rawId);
    await send(encodeBeacon({ nodeId: rawId, cluster: CLUSTER, seq: 1 }), port);
    expect((await discovered).address).toBe('127.0.0.1');
    await eventually(
      () => expect(a.discovery.stats().dropped).toEqual({ oversize: 1, truncated: 1, magic: 1, version: 1, decode: 1, shape: 1, cluster: 0, auth: 0, stale: 0 }),
      { timeoutMs: WAIT_MS },
    );
    expect(protocolErrors.sort()).toEqual(['decode', 'magic', 'oversize', 'shape', 'truncated', 'version']);
  });

  it('stops idempotently, sends and reports nothing after stop, and can start again', async () => {
    const port = nextPort++;
    const a = await startDiscovery('a', port);
    const b = await startDiscovery('b', port);
    const observer = await startDiscovery('observer', port);
    await nextDiscovered(b.discovery, (beacon) => beacon.nodeId === a.id);

    await Promise.all([b.discovery.stop(), b.discovery.stop()]);
    await b.discovery.stop();
    const late: DiscoveredBeacon[] = [];
    b.discovery.on('discovered', (beacon) => late.push(beacon));
    const before = b.discovery.stats();
    expect(() => b.discovery.announce()).toThrow(NodeStoppedError);

    // The observer hears a's next beacons on the same group; b, stopped, hears and sends none.
    const fromA = observer.discovery.stats().discovered;
    a.discovery.announce();
    await eventually(() => expect(observer.discovery.stats().discovered).toBeGreaterThanOrEqual(fromA + 3), { timeoutMs: WAIT_MS });
    expect(late).toEqual([]);
    expect(b.discovery.stats()).toEqual(before);

    await b.discovery.start();
    await nextDiscovered(b.discovery, (beacon) => beacon.nodeId === a.id);
  });

  it('fails start with InvalidArgumentError when the local beacon is not valid', async () => {
    const discovery = new Discovery(() => ({ nodeId: 'no-endpoint' }), { group: GROUP, port: nextPort++, cluster: CLUSTER });
    await expect(discovery.start()).rejects.toThrow(InvalidArgumentError);
    await discovery.stop();
  });
});
