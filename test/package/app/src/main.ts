// A strict TypeScript consumer of the packed zerocos: every layer once, printed as one JSON line.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { actor, get, init, JobCluster, kill, mapReduce, pipeline, remote, shutdown, stage, type Emit } from 'zerocos';

// A service account without a home has no per-user secret file: it is given the secret.
const secret = process.env.ZEROCOS_SECRET;
await init({ local: { daemons: 1, cpus: 2 }, ...(secret ? { secret } : {}) });
const dir = mkdtempSync(join(tmpdir(), 'zerocos-consumer-'));
try {
  // Tasks: a self-contained function may use the worker's own `process`; a module function imports packages.
  const square = remote((x: number) => ({ square: x * x, pid: process.pid }));
  const squared = await get(square.remote(7));
  const tag = remote<[string], string>({ module: new URL('./shipped.js', import.meta.url), export: 'tag' });
  const tagged: string = await get(tag.remote('hi'));

  // Actors.
  const Counter = actor(class Counter { n = 0; add(by: number): number { return (this.n += by); } });
  const counter = await Counter.remote();
  void counter.add.remote(2);
  const count: number = await get(counter.add.remote(3));
  kill(counter);

  // Jobs: a function (its argument and result types come from the function) and a program.
  const squares = await JobCluster.create((n: number) => n * n);
  // @ts-expect-error the function takes a number
  expect(() => squares.submit('not a number'));
  const job = squares.submit(6);
  const jobValue: number = await job.value();
  await squares.close();
  const programs = await JobCluster.create({ program: new URL('./program.js', import.meta.url), argv: ['{0}'] });
  const programJob = programs.submit('program');
  const exitCode = await programJob.value();
  const programOutput = programJob.stdout;
  await programs.close();

  // MapReduce over files in the OS temp directory; key and value types come from emit.
  writeFileSync(join(dir, 'part-0.txt'), 'the cat\nthe dog\n');
  writeFileSync(join(dir, 'part-1.txt'), 'a cat\n');
  const counts = await mapReduce({
    input: [join(dir, 'part-0.txt'), join(dir, 'part-1.txt')],
    files: true,
    map: (line: string, emit: Emit<string, number>) => {
      for (const word of line.split(' ')) if (word) emit(word, 1);
    },
    combine: (_word, ones) => ones.reduce((a, b) => a + b, 0),
    reduce: (_word, ones) => ones.reduce((a, b) => a + b, 0),
  }).collect();
  const cats: number | undefined = counts.get('cat');

  // A pipeline of two stages.
  const piped = await pipeline([1, 2, 3], [stage((n: number) => n * 10), stage((n: number) => n + 1)]).toArray();

  console.log(JSON.stringify({ squared, clientPid: process.pid, tagged, count, jobValue, exitCode, programOutput, cats, piped }));
} finally {
  rmSync(dir, { recursive: true, force: true });
  await shutdown();
}

/** Keeps a call that must not compile out of the run: the function is never called. */
function expect(_never: () => unknown): void {}
