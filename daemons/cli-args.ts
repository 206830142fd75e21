/**
 * Argument parsers the command-line entry points share (node-daemon, zerocos): each returns the
 * parsed value or throws commander's InvalidArgumentError, which commander prints as one line.
 */
import { InvalidArgumentError as CommanderArgumentError } from 'commander';

/** `host:port,host:port,...` (port 1-65535); blanks between commas are ignored. */
export function parsePeers(value: string): string[] {
  const peers = value.split(',').map((peer) => peer.trim()).filter(Boolean);
  for (const peer of peers) {
    const port = /^[^:\s]+:(\d{1,5})$/.exec(peer)?.[1];
    if (port === undefined || Number(port) < 1 || Number(port) > 65535) throw new CommanderArgumentError(`peer ${JSON.stringify(peer)} is not host:port (port 1-65535)`);
  }
  return peers;
}

/** A whole number above 0. */
export function parsePositive(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new CommanderArgumentError('must be a positive whole number');
  return n;
}
