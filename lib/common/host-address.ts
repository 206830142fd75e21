import { createSocket } from 'node:dgram';
import { isIPv4 } from 'node:net';
import { networkInterfaces } from 'node:os';
import { InvalidArgumentError } from './errors.js';

/**
 * Addresses of the host a node runs on: which one to advertise when a node binds every interface,
 * and which local address faces a given peer. One rule serves daemons, workers and clients alike:
 * a node binds the interface it was given and advertises an address other hosts can reach.
 */

/** True for the hosts that mean "every interface": `0.0.0.0`, `*`, `::`, `[::]`. */
export function isWildcardHost(host: string): boolean {
  return host === '0.0.0.0' || host === '*' || host === '::' || host === '[::]';
}

/** True for loopback hosts (`127.x.y.z`, `localhost`, `::1`): reachable from this host only. */
export function isLoopbackHost(host: string): boolean {
  return /^(127\.\d+\.\d+\.\d+|localhost|::1|\[::1\])$/.test(host);
}

/**
 * The address to advertise for a node bound to every interface: the first IPv4 address of a
 * non-internal interface (in the order the OS lists them).
 * @throws InvalidArgumentError when the host has none (only loopback): then `advertise` must be given
 */
export function defaultAdvertiseHost(): string {
  for (const addresses of Object.values(networkInterfaces())) {
    for (const address of addresses ?? []) {
      if (address.family === 'IPv4' && !address.internal) return address.address;
    }
  }
  throw new InvalidArgumentError('bound every interface but this host has no non-loopback IPv4 address to advertise: give advertise (node-daemon --advertise HOST)');
}

/**
 * The local address the OS would send from to reach `host` (the source address on the route to
 * it). A connected UDP socket answers this without sending anything: `connect` on a datagram
 * socket only picks the route.
 * @throws the resolver's or socket's error when `host` cannot be resolved or has no route
 */
export function localAddressToward(host: string, port: number): Promise<string> {
  const socket = createSocket(isIPv4(host) || !host.includes(':') ? 'udp4' : 'udp6');
  return new Promise<string>((resolve, reject) => {
    socket.once('error', reject);
    socket.connect(port, host, () => resolve(socket.address().address));
  }).finally(() => socket.close());
}

/** Splits `tcp://host:port` (or `host:port`) into its host and port; undefined when it is neither. */
export function splitHostPort(endpoint: string): { host: string; port: string } | undefined {
  const match = /^(?:tcp:\/\/)?(\[[^\]]+\]|[^:/]+):(\d+|\*)$/.exec(endpoint);
  return match ? { host: match[1]!, port: match[2]! } : undefined;
}
