/**
 * Type-level checks of the public API, compiled (never run) by test/types/types.test.ts against
 * the built declarations (`'zerocos'` resolves to dist/lib/index.d.ts) with the strictest
 * options: what a strict user gets from the compiler. Each `@ts-expect-error` line must
 * stay an error, and each `same<...>` must hold, or the compile fails.
 */
import {
  CallMessage,
  JobCluster,
  get,
  getActor,
  mapReduce,
  pipeline,
  remote,
  stage,
  type Emit,
  type Node,
  type ProcessContext,
} from 'zerocos';

/** Compiles only when A and B are the same type. */
type Same<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function same<A, B>(..._proof: Same<A, B> extends true ? [] : [never]): void {}

interface Pong {
  type: 'pong';
  seq: number;
}
const isPong = (message: unknown): message is Pong => typeof message === 'object' && message !== null && (message as Pong).type === 'pong';

export async function messages(self: ProcessContext, node: Node): Promise<void> {
  for await (const message of self) {
    same<typeof message, unknown>();
    // @ts-expect-error a message is unknown until narrowed
    void message.type;
    if (message instanceof CallMessage) message.reply(1);
  }
  const any = await self.receive();
  same<typeof any, unknown>();
  const pong = await self.receive(isPong, { timeoutMs: 10 });
  same<typeof pong, Pong>();
  same<Awaited<ReturnType<typeof self.call>>, unknown>();
  same<Awaited<ReturnType<typeof node.call>>, unknown>();
  const reply = await node.call<number>('x', 'ping');
  same<typeof reply, number>();
}

class Counter {
  n = 0;
  add(by: number): number {
    return (this.n += by);
  }
}

export async function actors(): Promise<void> {
  const untyped = await getActor('counter');
  // @ts-expect-error without the class, the handle has no methods
  untyped.add.remote(1);
  const counter = await getActor<Counter>('counter');
  const n = await get(counter.add.remote(1));
  same<typeof n, number>();
  // @ts-expect-error add takes a number
  counter.add.remote('one');
}

export async function jobs(): Promise<void> {
  const squares = await JobCluster.create((n: number) => n * n);
  // @ts-expect-error the function takes a number
  squares.submit('not a number');
  const job = squares.submit(3);
  same<typeof job.result, number | undefined>();
  same<Awaited<ReturnType<typeof job.value>>, number>();

  const slow = await JobCluster.create(async (name: string, times: number) => name.repeat(times));
  same<Awaited<ReturnType<ReturnType<typeof slow.submit>['value']>>, string>();
  // @ts-expect-error two arguments
  slow.submit('a');

  const programs = await JobCluster.create({ program: './tool.sh', argv: ['{0}'] });
  same<Awaited<ReturnType<ReturnType<typeof programs.submit>['value']>>, number>();
}

export async function tasks(): Promise<void> {
  const square = remote((x: number) => x * x);
  const value = await get(square.remote(2));
  same<typeof value, number>();
  // @ts-expect-error square takes a number
  square.remote('2');
}

export async function mapReduceTypes(): Promise<void> {
  const run = mapReduce({
    input: ['a b', 'b'],
    map: (line: string, emit: Emit<string, number>) => {
      for (const word of line.split(' ')) emit(word, 1);
    },
    // key and values are typed from emit: no annotations needed
    combine: (_word, ones) => ones.reduce((a, b) => a + b, 0),
    reduce: (word, ones) => `${word.length}:${ones.reduce((a, b) => a + b, 0)}`,
  });
  const counts = await run.collect();
  same<typeof counts, Map<string, string>>();
}

export async function pipelines(): Promise<void> {
  const out = await pipeline([1, 2], [stage((n: number) => `${n}`), stage((s: string) => s.length)]).toArray();
  same<typeof out, number[]>();
}
