import { InvalidArgumentError, describeReason, toErrorInfo } from '../common/errors.js';
import { RANKS_PROCESS } from '../common/service-names.js';
import { CallMessage, DownMessage } from '../node/messages.js';
import type { ProcessContext } from '../node/process-context.js';
import { FunctionCache, isShippedFunction, type ShippedFunction } from '../task/remote-function.js';
import type { TaskRuntime } from '../task/runtime.js';
import type { WorkerService } from '../task/worker-service.js';
import { isPid, type Pid } from '../wire/address.js';
import { RankFailedError } from './collective-errors.js';
import { Comm } from './comm.js';
import { Endpoint, FAREWELL } from './endpoint.js';
import { blobCount, contextOf, decodeParts, encodeParts, isHeader } from './frames.js';

/** What a group's driver asks a worker for: one rank, created but not started. */
export interface RankSpawn {
  code: ShippedFunction;
  args: unknown[];
  rank: number;
  size: number;
}

/** The worker's answer: the rank process and its ports, by source rank (null for itself). */
export interface RankCreated {
  pid: number;
  ports: (number | null)[];
}

/** What the driver then sends every rank, in a `['rank:start', table]` call answered with `main`'s result. */
export interface RankTable {
  /** Every rank's process, by rank. */
  ranks: Pid[];
  /** Where this rank sends to each rank: that rank's port for this one (null for itself). */
  routes: (Pid | null)[];
}

/** A rank that is not started within this long after it was created ends (its driver is gone). */
const START_TIMEOUT_MS = 60_000;

/** The largest group. */
export const MAX_GROUP_SIZE = 1024;

/** Sent by a rank to its own ports (by reference, on one node): watch this source rank. */
class WatchSource {
  constructor(readonly pid: Pid) {}
}

/**
 * Hosts the ranks of process groups on a worker: constructing it registers the
 * {@link RANKS_PROCESS} process. `['rank:new', spawn]` calls to it compile the shipped
 * `main`, spawns the rank's process and one port process per other rank, and answers
 * {@link RankCreated}; the rank waits for `['rank:start', table]` and answers it with what
 * `main(comm, ...args)` returns (or fails it with what `main` throws).
 *
 * Why ports: a binary message reaches a process without its sender, so each rank gets one
 * mailbox per source (a port); all a port receives comes from that source, in the order sent.
 * The port also monitors its source rank, so the loss is seen after the source's last message.
 * Ports are linked to their rank and end with it.
 */
export class RankHost implements WorkerService {
  private readonly functions = new FunctionCache();

  constructor(private readonly runtime: TaskRuntime) {
    runtime.node.spawn(
      async (self) => {
        for await (const message of self) {
          if (!(message instanceof CallMessage)) continue;
          const request = message.request;
          if (!Array.isArray(request) || request[0] !== 'rank:new') {
            message.fail(new InvalidArgumentError(`${RANKS_PROCESS} does not understand ${JSON.stringify(request)}`));
            continue;
          }
          this.create(request[1]).then(
            (created) => message.reply(created),
            (error: unknown) => message.fail(error),
          );
        }
      },
      { name: RANKS_PROCESS },
    );
  }

  /** Takes no message of the worker's process: ranks are asked for at {@link RANKS_PROCESS}. */
  handle(): boolean {
    return false;
  }

  private async create(spec: unknown): Promise<RankCreated> {
    if (!isRankSpawn(spec)) throw new InvalidArgumentError(`malformed 'rank:new' request`);
    const main = this.functions.compile(spec.code);
    const args = await Promise.all(spec.args.map((arg) => this.runtime.worker.argumentValue(arg)));
    const node = this.runtime.node;
    const endpoint = new Endpoint(spec.rank, spec.size);
    const ports: (Pid | null)[] = [];
    const pid = node.spawn((self) => runRank(self, endpoint, main, args, ports));
    for (let source = 0; source < spec.size; source++) {
      ports.push(source === spec.rank ? null : node.spawn((self) => runPort(self, endpoint, source, pid)));
    }
    return { pid: pid.id, ports: ports.map((port) => port?.id ?? null) };
  }
}

async function runRank(self: ProcessContext, endpoint: Endpoint, main: (...args: unknown[]) => unknown, args: unknown[], ports: (Pid | null)[]): Promise<void> {
  const start = await self.receive<CallMessage>(
    (m) => m instanceof CallMessage && Array.isArray(m.request) && m.request[0] === 'rank:start',
    { timeoutMs: START_TIMEOUT_MS },
  );
  const table = (start.request as [string, RankTable])[1];
  if (!isRankTable(table, endpoint.size)) {
    start.fail(new InvalidArgumentError(`malformed 'rank:start' table`));
    return;
  }
  endpoint.attach(self, table.routes);
  const comm = new Comm(endpoint, '', Array.from({ length: endpoint.size }, (_, rank) => rank));
  ports.forEach((port, source) => port && self.send(port, new WatchSource(table.ranks[source]!)));
  // The driver (the caller) gone means nobody wants the result: this rank ends. This rank
  // killed means its main must not go on as if it were still in the group.
  const driver = self.monitor(start.from);
  self.receive<DownMessage>((m) => m instanceof DownMessage && m.ref === driver).then(
    (down: DownMessage) => {
      endpoint.inbox.revoke(new RankFailedError(endpoint.rank, `its group's driver is gone (${describeReason(down.reason)})`));
      self.exitOther(self.pid, 'kill');
    },
    (error: unknown) => endpoint.inbox.revoke(error),
  );
  let value: unknown;
  try {
    value = await main(comm, ...args);
  } catch (error) {
    start.fail(error);
    endpoint.farewell(describeReason(toErrorInfo(error)), true);
    // Ending with the error: the ports (linked) end too, and the peers see an abnormal loss.
    throw error;
  }
  const { header, blobs } = encodeParts(0, 0, 0, [value]);
  start.reply([header, blobs]);
  endpoint.farewell('normal', false);
  for (const port of ports) {
    if (!port) continue;
    self.unlink(port);
    self.exitOther(port, 'kill');
  }
}

async function runPort(self: ProcessContext, endpoint: Endpoint, source: number, rank: Pid): Promise<void> {
  self.link(rank);
  const lost = (down: DownMessage) => endpoint.inbox.lost(source, describeReason(down.reason), down.reason !== 'normal');
  for (;;) {
    const message: unknown = await self.receive();
    if (message instanceof DownMessage) return lost(message);
    if (message instanceof WatchSource) {
      self.monitor(message.pid);
      continue;
    }
    if (Array.isArray(message) && message[0] === FAREWELL && typeof message[1] === 'string') {
      return endpoint.inbox.lost(source, message[1], message[2] !== false);
    }
    if (!isHeader(message)) {
      endpoint.dropped++;
      continue;
    }
    const blobs: Uint8Array[] = [];
    for (let n = blobCount(message); n > 0; n--) {
      const next: unknown = await self.receive((m) => m instanceof Uint8Array || m instanceof DownMessage);
      if (next instanceof DownMessage) return lost(next);
      blobs.push(next as Uint8Array);
    }
    try {
      endpoint.inbox.put({ source, context: contextOf(message), channel: message[0], tag: message[1], step: message[2], parts: decodeParts(message, blobs) });
    } catch {
      endpoint.dropped++;
    }
  }
}

function isRankSpawn(spec: unknown): spec is RankSpawn {
  const s = spec as RankSpawn;
  return (
    typeof s === 'object' && s !== null && isShippedFunction(s.code) && Array.isArray(s.args) &&
    Number.isInteger(s.size) && s.size >= 1 && s.size <= MAX_GROUP_SIZE && Number.isInteger(s.rank) && s.rank >= 0 && s.rank < s.size
  );
}

function isRankTable(table: unknown, size: number): table is RankTable {
  const t = table as RankTable;
  return (
    typeof t === 'object' && t !== null && Array.isArray(t.ranks) && Array.isArray(t.routes) &&
    t.ranks.length === size && t.routes.length === size && t.ranks.every(isPid) && t.routes.every((r) => r === null || isPid(r))
  );
}
