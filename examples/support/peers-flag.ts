import { parseArgs } from 'node:util';

/**
 * The examples' one flag: `--peers host:port,...` to join running daemons instead of starting a
 * local cluster. Exits with status 2 and a usage line on anything else.
 */
export function peersFlag(): string[] {
  try {
    const { values } = parseArgs({ options: { peers: { type: 'string' } }, strict: true });
    return values.peers ? values.peers.split(',').filter(Boolean) : [];
  } catch (error) {
    console.error(`${(error as Error).message}\nusage: main.js [--peers host:port,...]`);
    process.exit(2);
  }
}
