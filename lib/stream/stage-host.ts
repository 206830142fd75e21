import { InvalidArgumentError } from '../common/errors.js';
import { CallMessage } from '../node/messages.js';
import type { ProcessContext } from '../node/process-context.js';
import { partitionOf } from '../common/partition.js';
import { FunctionCache } from '../task/remote-function.js';
import type { TaskRuntime } from '../task/runtime.js';
import type { WorkerService } from '../task/worker-service.js';
import { StreamReader, StreamWriter } from './stream.js';
import { isStageSpawnRequest, parseStageSpawn, type StageSpawn, type StreamAddress } from './stream-protocol.js';

type Fn = (...args: unknown[]) => unknown;

/**
 * Runs pipeline stage instances on a worker: `['stage:spawn', spec]` spawns a process that reads
 * its input stream, calls the stage function on each item (`fn(item, emit, state)`: what it
 * returns, unless undefined, and whatever it emits go downstream), calls `flush(state, emit)` at
 * the end, and ends its output streams; an error ends them with the error instead.
 */
export class StageHost implements WorkerService {
  private readonly functions = new FunctionCache();

  constructor(private readonly runtime: TaskRuntime) {}

  /** Takes a stage request from the worker's mailbox; false when `message` is none. */
  handle(message: unknown): boolean {
    if (!(message instanceof CallMessage)) return false;
    const request = message.request;
    if (!isStageSpawnRequest(request)) return false;
    const spec = parseStageSpawn(request);
    if (!spec) {
      message.fail(new InvalidArgumentError(`malformed 'stage:spawn' request`));
      return true;
    }
    try {
      const compiled = {
        fn: this.functions.compile(spec.fn),
        init: spec.init && this.functions.compile(spec.init),
        flush: spec.flush && this.functions.compile(spec.flush),
        keyBy: spec.keyBy && this.functions.compile(spec.keyBy),
      };
      const pid = this.runtime.node.spawn((self) => runStage(self, spec, compiled));
      message.reply({ pid, stream: spec.stream } satisfies StreamAddress);
    } catch (error) {
      message.fail(error);
    }
    return true;
  }
}

async function runStage(self: ProcessContext, spec: StageSpawn, code: { fn: Fn; init: Fn | undefined; flush: Fn | undefined; keyBy: Fn | undefined }): Promise<void> {
  const reader = new StreamReader(self, { window: spec.window, writers: spec.writers, stream: spec.stream });
  const writers = spec.downstream.map((address) => new StreamWriter(self, address));
  let turn = 0;
  const route = (item: unknown): StreamWriter =>
    writers[code.keyBy ? partitionOf(code.keyBy(item), writers.length) : turn++ % writers.length]!;
  const send = async (items: unknown[]) => {
    for (const item of items) await route(item).write(item);
  };
  // Called as plain functions, so stack frames name them as the user wrote them.
  const { fn, init, flush } = code;
  try {
    const state = init ? await init() : {};
    for await (const item of reader) {
      const out: unknown[] = [];
      let value = fn(item, (x: unknown) => void out.push(x), state);
      if (typeof (value as PromiseLike<unknown> | null)?.then === 'function') value = await value;
      if (value !== undefined) out.push(value);
      await send(out);
    }
    if (flush) {
      const out: unknown[] = [];
      await flush(state, (x: unknown) => void out.push(x));
      await send(out);
    }
    await Promise.all(writers.map((writer) => writer.end()));
  } catch (error) {
    await Promise.all(writers.map((writer) => writer.fail(error)));
  }
}
