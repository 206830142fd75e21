/**
 * Hosts for tests, made of Linux network namespaces: a "switch" namespace holding a bridge, and
 * N host namespaces, each with its own `lo`, and an `eth0` (one end of a veth pair whose other
 * end is a port of the bridge) with an address in a private /24. Nothing is created or changed
 * in the root namespace: both ends of every veth live in namespaces this lab made.
 *
 * Every namespace name carries this process's pid and a sequence number, so concurrent runs
 * never collide. Processes are started with `ip netns exec`, which execs the command, so the pid
 * we get is the program's own. Teardown kills every process inside the lab's namespaces by pid
 * (`ip netns pids`, which also finds the daemons' workers) and deletes the namespaces: from
 * `destroy()` (afterAll), and synchronously on exit, SIGINT and SIGTERM of this process. A lab
 * left behind by a run that was SIGKILLed is swept by the next run (its owner pid is dead).
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { startReadyProcess, type ReadyChild } from '../../support/child.js';

const run = promisify(execFile);

/** The prefix of every namespace a lab creates: `zcmh-<owner pid>-<seq>-<role>`. */
const PREFIX = 'zcmh';

/** One host: a network namespace with an address on the lab's bridge. */
export interface NetnsHost {
  /** The namespace's name (`ip netns exec <name> ...`). */
  name: string;
  /** Its address on the bridge, e.g. `10.213.7.1`. */
  address: string;
  /** Its position in `lab.hosts`. */
  index: number;
}

export interface NetnsLabOptions {
  /** Host namespaces to create. */
  hosts: number;
}

/** Why namespaces cannot be made on this machine, or undefined when they can. */
export function netnsUnavailable(): string | undefined {
  if (process.platform !== 'linux') return `network namespaces need Linux (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'network namespaces need root (ip netns add)';
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
  } catch {
    return "the 'ip' command (iproute2) is not installed";
  }
  const probe = `${PREFIX}-${process.pid}-probe`;
  try {
    execFileSync('ip', ['netns', 'add', probe], { stdio: 'pipe' });
  } catch (error) {
    return `ip netns add failed: ${String((error as { stderr?: Buffer }).stderr ?? error).trim()}`;
  } finally {
    try {
      execFileSync('ip', ['netns', 'del', probe], { stdio: 'ignore' });
    } catch {
      // It was never made.
    }
  }
  return undefined;
}

let sequence = 0;
const live = new Set<NetnsLab>();

/** A bridge and N host namespaces; create with {@link NetnsLab.create}, always `destroy()`. */
export class NetnsLab {
  readonly hosts: NetnsHost[] = [];
  /** `10.213.<n>` : the first three octets of the lab's /24. */
  readonly subnet: string;
  private readonly switchName: string;
  private readonly namespaces: string[] = [];
  private readonly children = new Set<ReadyChild<unknown>>();
  private destroyed = false;

  private constructor(readonly id: string) {
    this.switchName = `${id}-sw`;
    // Addresses exist only on this lab's bridge, so any /24 would do; varying it keeps logs apart.
    this.subnet = `10.213.${(process.pid + sequence) % 250}`;
  }

  /**
   * Creates the switch and `hosts` host namespaces. On any failure, what was made is torn down
   * before the error is thrown.
   */
  static async create({ hosts }: NetnsLabOptions): Promise<NetnsLab> {
    sweepStale();
    const lab = new NetnsLab(`${PREFIX}-${process.pid}-${++sequence}`);
    live.add(lab);
    installExitHandlers();
    try {
      await lab.ns('add', lab.switchName);
      // No IGMP snooping: with no querier on the bridge, snooping could hold back the beacons.
      await lab.ip(lab.switchName, 'link', 'add', 'br0', 'type', 'bridge', 'mcast_snooping', '0');
      await lab.ip(lab.switchName, 'link', 'set', 'br0', 'up');
      for (let index = 0; index < hosts; index++) {
        const name = `${lab.id}-h${index}`;
        const address = `${lab.subnet}.${index + 1}`;
        await lab.ns('add', name);
        await lab.ip(lab.switchName, 'link', 'add', `p${index}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', name);
        await lab.ip(lab.switchName, 'link', 'set', `p${index}`, 'master', 'br0', 'up');
        await lab.ip(name, 'link', 'set', 'lo', 'up');
        await lab.ip(name, 'addr', 'add', `${address}/24`, 'dev', 'eth0');
        await lab.ip(name, 'link', 'set', 'eth0', 'up');
        // Multicast (discovery beacons) leaves by eth0; there is no default route to anywhere.
        await lab.ip(name, 'route', 'add', '224.0.0.0/4', 'dev', 'eth0');
        lab.hosts.push({ name, address, index });
      }
    } catch (error) {
      await lab.destroy();
      throw error;
    }
    return lab;
  }

  /** Runs a command inside a host's namespace and resolves with its output; rejects on a non-zero exit. */
  async exec(host: NetnsHost, argv: string[], { timeoutMs = 20_000, env = process.env }: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<{ stdout: string; stderr: string }> {
    return run('ip', ['netns', 'exec', host.name, ...argv], { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, env });
  }

  /**
   * Starts `node <script> ...args` inside a host's namespace and resolves once it prints its
   * `{"ready": ...}` line (see startReadyChild). The lab stops it at `destroy()` if the test did not.
   */
  async startNode<T>(host: NetnsHost, script: string, args: string[], timeoutMs = 15_000, env: NodeJS.ProcessEnv = process.env): Promise<ReadyChild<T>> {
    this.assertLive();
    const child = await startReadyProcess<T>('ip', ['netns', 'exec', host.name, process.execPath, script, ...args], {
      label: `${script} in ${host.name}`,
      timeoutMs,
      env,
    });
    this.children.add(child as ReadyChild<unknown>);
    void child.exited.then(() => this.children.delete(child as ReadyChild<unknown>));
    return child;
  }

  /** Takes a host's link down (a partition: its packets go nowhere, nothing is closed). */
  async linkDown(host: NetnsHost): Promise<void> {
    await this.ip(host.name, 'link', 'set', 'eth0', 'down');
  }

  /** Brings a host's link up again; its address and routes are put back if the kernel dropped them. */
  async linkUp(host: NetnsHost): Promise<void> {
    await this.ip(host.name, 'link', 'set', 'eth0', 'up');
    // Routes through a link go when it goes down; the address stays.
    await this.ip(host.name, 'route', 'replace', '224.0.0.0/4', 'dev', 'eth0');
  }

  /** The pids of every process inside a host's namespace now (a daemon, its workers, clients). */
  pids(host: NetnsHost): number[] {
    return namespacePids(host.name);
  }

  /**
   * Stops every process the lab started (SIGTERM, then SIGKILL), kills whatever else still runs
   * inside its namespaces, and deletes them. Safe to call twice.
   */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    await Promise.all([...this.children].map((child) => child.stop(1000)));
    this.destroySync();
  }

  /** The synchronous teardown, also used from exit handlers, where nothing async runs. */
  destroySync(): void {
    this.destroyed = true;
    live.delete(this);
    for (const child of this.children) if (child.child.exitCode === null && child.child.signalCode === null) killPid(child.pid);
    removeNamespaces([...this.namespaces].reverse());
  }

  private assertLive(): void {
    if (this.destroyed) throw new Error(`lab ${this.id} is destroyed`);
  }

  private async ns(verb: 'add', name: string): Promise<void> {
    await run('ip', ['netns', verb, name]);
    this.namespaces.push(name);
  }

  private async ip(namespace: string, ...argv: string[]): Promise<void> {
    try {
      await run('ip', ['-n', namespace, ...argv]);
    } catch (error) {
      throw new Error(`ip -n ${namespace} ${argv.join(' ')}: ${String((error as { stderr?: string }).stderr ?? error).trim()}`);
    }
  }
}

function namespacePids(name: string): number[] {
  try {
    return execFileSync('ip', ['netns', 'pids', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
      .split('\n')
      .filter((line) => /^\d+$/.test(line))
      .map(Number);
  } catch {
    return [];
  }
}

function killPid(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

/** SIGKILLs every process in the namespaces, waits (bounded) for them to go, and deletes them. */
function removeNamespaces(names: string[]): void {
  for (const name of names) for (const pid of namespacePids(name)) killPid(pid);
  const deadline = Date.now() + 2000;
  while (names.some((name) => namespacePids(name).length > 0) && Date.now() < deadline) {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
  }
  for (const name of names) {
    if (!existsSync(`/run/netns/${name}`) && !existsSync(`/var/run/netns/${name}`)) continue;
    try {
      // Deleting a host namespace destroys its veth end, and with it the peer on the bridge.
      execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
    } catch {
      // Nothing more can be done from here; the next run's sweep will try again.
    }
  }
}

/** Removes the namespaces of labs whose owning test process is gone (it was SIGKILLed). */
function sweepStale(): void {
  let names: string[];
  try {
    names = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
      .split('\n')
      .map((line) => line.split(' ')[0]!)
      .filter((name) => name.startsWith(`${PREFIX}-`));
  } catch {
    return;
  }
  const stale = names.filter((name) => {
    const owner = Number(name.split('-')[1]);
    if (!Number.isInteger(owner) || owner === process.pid) return false;
    try {
      process.kill(owner, 0);
      return false;
    } catch {
      return true;
    }
  });
  if (stale.length > 0) removeNamespaces(stale);
}

let handlersInstalled = false;
function installExitHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  const teardown = () => {
    for (const lab of [...live]) lab.destroySync();
  };
  process.once('exit', teardown);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      teardown();
      // Our listener replaced the default action: re-raise so the process still ends by the signal.
      process.kill(process.pid, signal);
    });
  }
}
