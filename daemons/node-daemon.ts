#!/usr/bin/env node
/**
 * node-daemon: runs one zerocos node on this host.
 *
 * This is the kernel's daemon: it binds, prints one machine-readable ready line, and stops
 * cleanly on SIGINT/SIGTERM. Discovery, heartbeats, worker processes and secrets come with
 * the cluster layer (issue 3).
 */
import { Command, InvalidArgumentError as CommanderArgumentError } from 'commander';
import { Node, type NodeOptions } from 'zerocos';

/** The port a daemon binds when none is given; 0 picks any free port. */
export const DEFAULT_PORT = 9740;

const program = new Command()
  .name('node-daemon')
  .description('Run a zerocos node on this host.')
  .option('--host <address>', 'interface to bind (loopback unless you know why)', '127.0.0.1')
  .option('--port <number>', `TCP port to bind; 0 = any free port`, parsePort, DEFAULT_PORT)
  .option('--name <name>', 'node name, the first part of the node id ([A-Za-z0-9_.-], 1-64)', 'daemon')
  .option('--max-message-bytes <bytes>', 'largest message accepted or sent', parsePositive)
  .option('--mailbox-capacity <n>', 'default bound of each mailbox', parsePositive)
  .option('--log-level <level>', 'silent | info | debug', 'info')
  .option('--json', 'print log lines as JSON', false)
  .option('--insecure', 'allow binding a non-loopback interface without authentication', false)
  .showHelpAfterError();

program.parse();
const options = program.opts<{
  host: string;
  port: number;
  name: string;
  maxMessageBytes?: number;
  mailboxCapacity?: number;
  logLevel: string;
  json: boolean;
  insecure: boolean;
}>();

// Traffic is neither authenticated nor encrypted yet: anyone who can reach the port can inject
// messages. Loopback is the only safe default.
const loopback = /^(127\.\d+\.\d+\.\d+|localhost|::1|\[::1\])$/;
if (!loopback.test(options.host) && !options.insecure) {
  program.error(`error: refusing to bind ${options.host} without authentication; pass --insecure to do it anyway`);
}

if (!['silent', 'info', 'debug'].includes(options.logLevel)) program.error(`error: --log-level must be silent, info or debug`);

const log = (level: 'info' | 'debug', message: string, fields: Record<string, unknown> = {}) => {
  if (options.logLevel === 'silent' || (level === 'debug' && options.logLevel !== 'debug')) return;
  if (options.json) console.error(JSON.stringify({ level, message, ...fields }));
  else console.error(`[${level}] ${message}${Object.keys(fields).length ? ' ' + JSON.stringify(fields) : ''}`);
};

const nodeOptions: NodeOptions = {
  name: options.name,
  bind: `tcp://${options.host}:${options.port === 0 ? '*' : options.port}`,
  ...(options.maxMessageBytes !== undefined ? { maxMessageBytes: options.maxMessageBytes } : {}),
  ...(options.mailboxCapacity !== undefined ? { mailboxCapacity: options.mailboxCapacity } : {}),
};

let node: Node;
try {
  node = await Node.start(nodeOptions);
} catch (error) {
  const code = (error as { code?: string }).code;
  const why = code === 'EADDRINUSE' ? `port ${options.port} on ${options.host} is already in use` : (error as Error).message;
  console.error(`node-daemon: cannot start: ${why}`);
  process.exit(1);
}

node.on('nodedown', (event) => log('info', 'node down', { ...event }));
node.on('protocolError', (error) => log('debug', 'dropped frame', { reason: error.reason, message: error.message }));
node.on('crash', (event) => log('info', 'process crashed', { ...event }));

// The one machine-readable line, on stdout: everything else goes to stderr.
console.log(JSON.stringify({ ready: { node: node.id, endpoint: node.endpoint, pid: process.pid } }));
log('info', 'ready', { node: node.id });

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    log('info', `${signal}: stopping`);
    void node.stop().then(() => process.exit(0));
  });
}

function parsePort(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new CommanderArgumentError('a port is a whole number from 0 to 65535');
  return port;
}

function parsePositive(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new CommanderArgumentError('must be a positive whole number');
  return n;
}
