/**
 * Actors, Ray-style: instances of a class living on the cluster's workers, whose methods are
 * called remotely and run one at a time, in the order each caller made the calls.
 *
 *   node dist/examples/actors/main.js                          (starts a local cluster of 2 daemons)
 *   node dist/examples/actors/main.js --peers 127.0.0.1:9740   (joins running daemons instead)
 *
 * (a) Ray's counters: 4 Counter actors, each incremented 3 times; (b) a named logging actor that
 * 20 tasks write to, each given its handle as an argument, read back through `getActor('log')`;
 * (c) `kill()`, after which calls fail with ActorDiedError. Exits 1 on a wrong result.
 */
import * as zerocos from 'zerocos';
import { peersFlag } from '../support/peers-flag.js';
import { ActorDiedError, actor, get, getActor, init, kill, remote, shutdown, type ActorHandle } from 'zerocos';

const peers = peersFlag();

// Actor classes are shipped as source, so, like remote functions, they use no free variables.
class Counter {
  private value = 0;
  increment(): number {
    return ++this.value;
  }
  read(): number {
    return this.value;
  }
}

class Log {
  private readonly messages: string[] = [];
  write(message: string): number {
    return this.messages.push(message);
  }
  read(): string[] {
    return this.messages;
  }
}

const Counters = actor(Counter);
const Logs = actor(Log, { name: 'log' });

// Inside a shipped function, `zerocos` is the worker's global API namespace: the same name this
// module imports it under, so the code reads the same here and there. The actor's handle is an
// ordinary argument: it travels to the worker and calls the actor from there.
const writeToLog = remote((i: number, log: ActorHandle<Log>) => zerocos.get(log.write.remote(`task ${i} was here`)));

const session = await init(peers.length > 0 ? { peers } : {});
let ok = true;
try {
  console.log(session.local ? `started a local cluster: ${session.local.daemons.length} daemons, ${session.runtime.workers().length} workers` : `joined ${peers.join(', ')}`);

  // (a) Calls to one actor run in order, so each read sees its own three increments.
  const counters = await Promise.all([0, 1, 2, 3].map(() => Counters.remote()));
  for (const counter of counters) for (let i = 0; i < 3; i++) counter.increment.remote();
  const counts = await get(counters.map((counter) => counter.read.remote()));
  console.log(`counters: [${counts.join(', ')}]`);
  ok &&= counts.join() === '3,3,3,3';

  // (b) One named actor, many writers; any client finds it by name.
  const log = await Logs.remote();
  await get(Array.from({ length: 20 }, (_, i) => writeToLog.remote(i, log)));
  const found = await getActor<Log>('log');
  const messages = await get(found.read.remote());
  console.log(`log: ${messages.length} messages from 20 tasks, read through getActor('log'); the first 3:`);
  for (const message of messages.slice(0, 3)) console.log(`  ${message}`);
  ok &&= messages.length === 20 && new Set(messages).size === 20;

  // (c) kill() ends the actor at once; calls made after it fail with ActorDiedError.
  const doomed = counters[0]!;
  kill(doomed);
  try {
    await get(doomed.increment.remote());
    console.log('kill: the killed actor still answered');
    ok = false;
  } catch (error) {
    if (!(error instanceof ActorDiedError)) throw error;
    console.log(`kill: ${error.name}: ${error.message}`);
  }
  const others = await get(counters.slice(1).map((counter) => counter.read.remote()));
  console.log(`kill: the other counters still answer: [${others.join(', ')}]`);
  // Actors outlive the client that made them (until killed or their worker ends): on a shared
  // cluster (--peers), leave none behind.
  for (const counter of counters.slice(1)) kill(counter);
  kill(log);
} finally {
  await shutdown();
}
console.log(ok ? 'all ok' : 'FAILED');
process.exitCode = ok ? 0 : 1;
