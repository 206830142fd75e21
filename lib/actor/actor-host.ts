import { InvalidArgumentError } from '../common/errors.js';
import { CallMessage, DownMessage } from '../node/messages.js';
import type { ProcessContext } from '../node/process-context.js';
import { LocatedValue } from '../task/object-ref.js';
import { heldKey } from '../task/objects-protocol.js';
import { FunctionCache, isShippedFunction } from '../task/remote-function.js';
import { type TaskRuntime } from '../task/runtime.js';
import type { WorkerService } from '../task/worker-service.js';
import { ACTOR_NAME_PREFIX, OBJECTS_PROCESS } from '../common/service-names.js';
import { isActorNewRequest, parseActorNew, parseMethodCall } from './actor-protocol.js';

type Instance = Record<string, unknown>;
type Constructor = new (...args: unknown[]) => Instance;

/**
 * Hosts actors on a worker: `['actor:new', code, args, options]` constructs an instance of the
 * shipped class and spawns the process that owns it, answering with its pid id. The process
 * takes method calls `['m', refId, method, args]` from its mailbox in arrival order, so one
 * caller's calls run in the order they were made; with `maxConcurrency` above 1, up to that
 * many async methods run at once (they still start in order).
 */
export class ActorHost implements WorkerService {
  private readonly classes = new FunctionCache();

  constructor(private readonly runtime: TaskRuntime) {}

  /** Takes an actor request from the worker's mailbox; false when `message` is none. */
  handle(message: unknown): boolean {
    if (!(message instanceof CallMessage)) return false;
    if (!isActorNewRequest(message.request)) return false;
    this.create(message).catch((error: unknown) => message.fail(error));
    return true;
  }

  private async create(message: CallMessage): Promise<void> {
    const request = parseActorNew(message.request);
    if (!request) throw new InvalidArgumentError(`malformed 'actor:new' request`);
    const { code, args, options } = request;
    const maxConcurrency = options.maxConcurrency ?? 1;
    if (!Number.isInteger(maxConcurrency) || maxConcurrency < 1) throw new InvalidArgumentError(`maxConcurrency must be a positive whole number, not ${maxConcurrency}`);
    const Class = (
      isShippedFunction(code)
        ? this.classes.compile(code)
        : await this.runtime.modules.load(code, (hash) => this.runtime.worker.fetchFile(message.from.node, hash))
    ) as unknown as Constructor;
    const values = await Promise.all(args.map((arg) => this.runtime.worker.argumentValue(arg)));
    const instance = new Class(...values);
    const owner = options.owner;
    const pid = this.runtime.node.spawn(
      (self) => {
        // Its creator's objects process lives as long as its runtime: when it ends, so does this actor.
        if (owner !== undefined) self.monitor({ name: OBJECTS_PROCESS, node: owner });
        return this.serve(self, instance, Class.name || 'actor', maxConcurrency);
      },
      options.name !== undefined ? { name: ACTOR_NAME_PREFIX + options.name } : {},
    );
    message.reply(pid.id);
  }

  private async serve(self: ProcessContext, instance: Instance, className: string, maxConcurrency: number): Promise<void> {
    let running = 0;
    let turnFreed: (() => void) | undefined;
    for await (const message of self) {
      if (message instanceof DownMessage) return; // the creator is gone
      if (!(message instanceof CallMessage)) continue;
      const call = parseMethodCall(message.request);
      if (!call) {
        message.fail(new InvalidArgumentError(`actor ${className} does not understand ${JSON.stringify(message.request)}`));
        continue;
      }
      const { refId, method, args } = call;
      const pending = this.invoke(instance, className, method, args).then(
        (value) => this.runtime.worker.answer(message, heldKey(message.from.node, refId), value),
        (error: unknown) => message.fail(error),
      );
      // Sync methods with plain arguments have answered by now; async ones hold a turn until done.
      running++;
      void pending.finally(() => {
        running--;
        turnFreed?.();
      });
      while (running >= maxConcurrency) await new Promise<void>((resolve) => (turnFreed = resolve));
      turnFreed = undefined;
    }
  }

  private async invoke(instance: Instance, className: string, method: string, args: unknown[]): Promise<unknown> {
    const fn = method === 'constructor' ? undefined : instance[method];
    if (typeof fn !== 'function') throw new InvalidArgumentError(`actor ${className} has no method '${method}'`);
    const values = args.some((arg) => arg instanceof LocatedValue) ? await Promise.all(args.map((arg) => this.runtime.worker.argumentValue(arg))) : args;
    return fn.apply(instance, values);
  }
}
