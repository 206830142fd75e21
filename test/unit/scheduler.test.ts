import { describe, expect, it } from 'vitest';
import type { DaemonView } from '../../lib/cluster/daemon-offer.js';
import { Scheduler, isSimple, type Demand } from '../../lib/task/scheduler.js';

const simple: Demand = { cpu: 1, resources: {} };
const gpu: Demand = { cpu: 1, resources: { gpu: 1 } };
const twoCpus: Demand = { cpu: 2, resources: {} };

/** Daemon `name` with `count` workers named `name/w0`... and resources {cpu: count, ...extra}. */
function daemon(name: string, count: number, extra: Record<string, number> = {}): DaemonView {
  return { daemon: name, workers: Array.from({ length: count }, (_, i) => `${name}/w${i}`), resources: { cpu: count, ...extra } };
}

/** Picks `n` times; the worker node of each pick (undefined when none had room). */
function pickMany(scheduler: Scheduler, demand: Demand, n: number): (string | undefined)[] {
  return Array.from({ length: n }, () => scheduler.pick(demand)?.node);
}

describe('Scheduler', () => {
  describe('simple demand', () => {
    it('picks the least-loaded worker across daemons: one each before any gets a second', () => {
      const scheduler = new Scheduler();
      scheduler.update([daemon('a', 2), daemon('b', 2)]);
      expect(scheduler.workerCount).toBe(4);
      const first = pickMany(scheduler, simple, 4);
      expect(new Set(first)).toEqual(new Set(['a/w0', 'a/w1', 'b/w0', 'b/w1']));
      const fifth = scheduler.pick(simple)!;
      expect(fifth.inFlight).toBe(2);
      // Releasing one makes it the least loaded.
      const slotB1 = scheduler.pick(simple, new Set(['a/w0', 'a/w1', 'b/w0']))!;
      expect(slotB1.node).toBe('b/w1');
      scheduler.release(slotB1, simple);
      scheduler.release(slotB1, simple);
      expect(scheduler.pick(simple)!.node).toBe('b/w1');
    });

    it('gives ties to the worker picked last, so one-at-a-time work stays on a warm worker, while a burst spreads by load', () => {
      const scheduler = new Scheduler();
      scheduler.update([daemon('a', 2), daemon('b', 1)]);
      const oneAtATime = Array.from({ length: 6 }, () => {
        const slot = scheduler.pick(simple)!;
        scheduler.release(slot, simple);
        return slot.node;
      });
      expect(new Set(oneAtATime).size).toBe(1);
      const burst = pickMany(scheduler, simple, 6);
      expect(['a/w0', 'a/w1', 'b/w0'].map((node) => burst.filter((n) => n === node).length)).toEqual([2, 2, 2]);
    });

    it('defaults to a pipeline of 64 tasks per worker', () => {
      const scheduler = new Scheduler();
      scheduler.update([daemon('a', 1)]);
      expect(pickMany(scheduler, simple, 65).filter((node) => node !== undefined)).toHaveLength(64);
    });

    it('pipelines at most pipelineDepth tasks per worker, then has no room until one is released', () => {
      const scheduler = new Scheduler({ pipelineDepth: 2 });
      scheduler.update([daemon('a', 1)]);
      const [one, two, three] = [scheduler.pick(simple), scheduler.pick(simple), scheduler.pick(simple)];
      expect(one?.node).toBe('a/w0');
      expect(two?.node).toBe('a/w0');
      expect(three).toBeUndefined();
      scheduler.release(one!, simple);
      expect(scheduler.pick(simple)?.node).toBe('a/w0');
      expect(scheduler.pick(simple)).toBeUndefined();
    });

    it('skips excluded workers', () => {
      const scheduler = new Scheduler();
      scheduler.update([daemon('a', 2)]);
      expect(scheduler.pick(simple, new Set(['a/w0']))?.node).toBe('a/w1');
      expect(scheduler.pick(simple, new Set(['a/w0', 'a/w1']))).toBeUndefined();
    });

    it('keeps in-flight counts across updates of the view', () => {
      const scheduler = new Scheduler({ pipelineDepth: 1 });
      scheduler.update([daemon('a', 1)]);
      const slot = scheduler.pick(simple)!;
      scheduler.update([daemon('a', 1)]);
      expect(scheduler.pick(simple)).toBeUndefined();
      scheduler.release(slot, simple);
      expect(scheduler.pick(simple)?.node).toBe('a/w0');
    });

    it('never counts a release below zero', () => {
      const scheduler = new Scheduler();
      scheduler.update([daemon('a', 1)]);
      const slot = scheduler.pick(simple)!;
      scheduler.release(slot, simple);
      scheduler.release(slot, simple);
      expect(slot.inFlight).toBe(0);
    });
  });

  describe('reserved demand (custom resources, more than one CPU)', () => {
    it('tells simple from reserved demand', () => {
      expect(isSimple(simple)).toBe(true);
      expect(isSimple({ cpu: 0, resources: {} })).toBe(true);
      expect(isSimple({ cpu: 1, resources: { gpu: 0 } })).toBe(true);
      expect(isSimple(gpu)).toBe(false);
      expect(isSimple(twoCpus)).toBe(false);
    });

    it('places a resource demand only on a daemon that has it, holding it until released', () => {
      const scheduler = new Scheduler();
      scheduler.update([daemon('a', 2), daemon('g', 2, { gpu: 1 })]);
      const held = scheduler.pick(gpu)!;
      expect(held.daemon).toBe('g');
      // The only gpu is held: no room, though g's other worker is idle.
      expect(scheduler.pick(gpu)).toBeUndefined();
      // Simple work is not held back by it.
      expect(pickMany(scheduler, simple, 3).every((node) => node !== undefined)).toBe(true);
      scheduler.release(held, gpu);
      expect(scheduler.pick(gpu)?.daemon).toBe('g');
    });

    it('reserves several CPUs of one daemon', () => {
      const scheduler = new Scheduler();
      scheduler.update([daemon('a', 2), daemon('b', 3)]);
      const first = scheduler.pick(twoCpus)!;
      const second = scheduler.pick(twoCpus)!;
      expect(new Set([first.daemon, second.daemon])).toEqual(new Set(['a', 'b']));
      // a has 0 CPUs left, b 1: a third 2-CPU demand waits.
      expect(scheduler.pick(twoCpus)).toBeUndefined();
      expect(scheduler.pick({ cpu: 1, resources: { x: 0 } })).toBeDefined();
      scheduler.release(first, twoCpus);
      expect(scheduler.pick(twoCpus)?.daemon).toBe(first.daemon);
    });

    it('keeps reservations across updates of the view', () => {
      const scheduler = new Scheduler();
      scheduler.update([daemon('g', 2, { gpu: 1 })]);
      const held = scheduler.pick(gpu)!;
      scheduler.update([daemon('g', 2, { gpu: 1 })]);
      expect(scheduler.pick(gpu)).toBeUndefined();
      scheduler.release(held, gpu);
      expect(scheduler.pick(gpu)).toBeDefined();
    });

    it('tells a demand no daemon can ever satisfy (infeasible) from one that must only wait', () => {
      const scheduler = new Scheduler();
      expect(scheduler.feasible(simple)).toBe(false); // nothing known yet
      scheduler.update([daemon('a', 2), daemon('g', 1, { gpu: 2 })]);
      expect(scheduler.feasible(simple)).toBe(true);
      expect(scheduler.feasible(twoCpus)).toBe(true);
      expect(scheduler.feasible({ cpu: 3, resources: {} })).toBe(false);
      expect(scheduler.feasible({ cpu: 1, resources: { gpu: 2 } })).toBe(true);
      expect(scheduler.feasible({ cpu: 1, resources: { gpu: 3 } })).toBe(false);
      expect(scheduler.feasible({ cpu: 1, resources: { tpu: 1 } })).toBe(false);
      // gpu and 2 CPUs exist, but not on one daemon.
      expect(scheduler.feasible({ cpu: 2, resources: { gpu: 1 } })).toBe(false);
      // Busy is still feasible.
      scheduler.pick({ cpu: 1, resources: { gpu: 2 } });
      expect(scheduler.pick({ cpu: 1, resources: { gpu: 2 } })).toBeUndefined();
      expect(scheduler.feasible({ cpu: 1, resources: { gpu: 2 } })).toBe(true);
    });

    it('does not count a daemon without workers as able to run anything', () => {
      const scheduler = new Scheduler();
      scheduler.update([{ daemon: 'g', workers: [], resources: { cpu: 0, gpu: 1 } }, daemon('a', 1)]);
      expect(scheduler.feasible(gpu)).toBe(false);
      expect(scheduler.pick(gpu)).toBeUndefined();
    });
  });

  describe('dead workers', () => {
    it('skips a worker marked dead until deadForMs has passed, even while its daemon still lists it', () => {
      const scheduler = new Scheduler({ deadForMs: 5000 });
      const views = [daemon('a', 2)];
      scheduler.update(views, 1000);
      scheduler.markDead('a/w0', 1000);
      expect(scheduler.workerCount).toBe(1);
      expect(pickMany(scheduler, simple, 3)).toEqual(['a/w1', 'a/w1', 'a/w1']);
      scheduler.update(views, 5999);
      expect(scheduler.workerCount).toBe(1);
      expect(scheduler.pick(simple)?.node).toBe('a/w1');
      scheduler.update(views, 6000);
      expect(scheduler.workerCount).toBe(2);
      expect(scheduler.pick(simple)?.node).toBe('a/w0');
    });

    it('makes a demand infeasible when its daemon’s only worker is dead', () => {
      const scheduler = new Scheduler();
      scheduler.update([daemon('g', 1, { gpu: 1 }), daemon('a', 1)], 0);
      scheduler.markDead('g/w0', 0);
      expect(scheduler.feasible(gpu)).toBe(false);
      expect(scheduler.feasible(simple)).toBe(true);
    });

    it('ignores marking an unknown worker dead, but still skips it when it shows up', () => {
      const scheduler = new Scheduler({ deadForMs: 1000 });
      scheduler.update([daemon('a', 1)], 0);
      scheduler.markDead('a/w9', 0);
      expect(scheduler.workerCount).toBe(1);
      scheduler.update([{ daemon: 'a', workers: ['a/w0', 'a/w9'], resources: { cpu: 2 } }], 500);
      expect(scheduler.workerCount).toBe(1);
      scheduler.update([{ daemon: 'a', workers: ['a/w0', 'a/w9'], resources: { cpu: 2 } }], 1000);
      expect(scheduler.workerCount).toBe(2);
    });
  });

  describe('placement of long-lived work (actors)', () => {
    it('places on the worker with the fewest placements, then the least busy', () => {
      const scheduler = new Scheduler();
      scheduler.update([daemon('a', 2), daemon('b', 1)]);
      const actorDemand: Demand = { cpu: 0, resources: {} };
      const placed = [scheduler.place(actorDemand), scheduler.place(actorDemand), scheduler.place(actorDemand)].map((slot) => slot?.node);
      expect(new Set(placed)).toEqual(new Set(['a/w0', 'a/w1', 'b/w0']));
      // All have one placement: the least busy wins.
      scheduler.pick(simple, new Set(['a/w1', 'b/w0']));
      scheduler.pick(simple, new Set(['a/w0', 'b/w0']));
      expect(scheduler.place(actorDemand)?.node).toBe('b/w0');
    });

    it('holds the resources of a placement until unplace', () => {
      const scheduler = new Scheduler();
      scheduler.update([daemon('a', 1), daemon('g', 1, { gpu: 1 })]);
      const slot = scheduler.place({ cpu: 0, resources: { gpu: 1 } })!;
      expect(slot.daemon).toBe('g');
      expect(slot.placed).toBe(1);
      expect(scheduler.place({ cpu: 0, resources: { gpu: 1 } })).toBeUndefined();
      expect(scheduler.pick(gpu)).toBeUndefined();
      scheduler.unplace(slot, { cpu: 0, resources: { gpu: 1 } });
      expect(slot.placed).toBe(0);
      expect(scheduler.pick(gpu)?.daemon).toBe('g');
    });

    it('reserves the CPUs an actor asks for', () => {
      const scheduler = new Scheduler();
      scheduler.update([daemon('a', 1)]);
      const slot = scheduler.place({ cpu: 1, resources: {} })!;
      expect(scheduler.place({ cpu: 1, resources: {} })).toBeUndefined();
      expect(scheduler.pick(twoCpus)).toBeUndefined();
      scheduler.unplace(slot, { cpu: 1, resources: {} });
      expect(scheduler.place({ cpu: 1, resources: {} })?.node).toBe('a/w0');
    });
  });
});
