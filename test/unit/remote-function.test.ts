import { createHash } from 'node:crypto';
import { pack, unpack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, ZerocosError } from '../../lib/common/errors.js';
import {
  compileShipped,
  FreeVariableError,
  FunctionCache,
  HashMismatchError,
  shipClass,
  shipFunction,
  type ShippedFunction,
} from '../../lib/task/remote-function.js';

/** Ships, compiles as a worker would, and returns the compiled function. */
function roundTrip(fn: Function): (...args: unknown[]) => unknown {
  return compileShipped(unpack(pack(shipFunction(fn))) as ShippedFunction);
}

function freeNamesOf(fn: Function): string[] {
  try {
    shipFunction(fn);
  } catch (error) {
    expect(error).toBeInstanceOf(FreeVariableError);
    return (error as FreeVariableError).names;
  }
  throw new Error('expected a FreeVariableError');
}

const k = 3;
const m = 4;
function outerHelper(x: number): number {
  return x;
}
class Base {}

describe('shipFunction / compileShipped round trip', () => {
  it('ships a function declaration', () => {
    function add(a: number, b: number) {
      return a + b;
    }
    const shipped = shipFunction(add);
    expect(shipped).toMatchObject({ kind: 'source', name: 'add' });
    expect(shipped.hash).toBe(createHash('sha256').update(shipped.source).digest('hex'));
    expect(compileShipped(shipped)(2, 3)).toBe(5);
  });

  it('ships function expressions, named and anonymous', () => {
    const f = function (x: number) { return x * 2; };
    const fact = function fact(n: number): number { return n <= 1 ? 1 : n * fact(n - 1); };
    expect(roundTrip(f)(4)).toBe(8);
    expect(roundTrip(fact)(5)).toBe(120);
  });

  it('ships arrows with expression and block bodies', () => {
    expect(roundTrip((x: number) => x + 1)(1)).toBe(2);
    expect(roundTrip((x: number) => { const y = x * 3; return y; })(2)).toBe(6);
    expect(roundTrip(() => ({ a: 1 }))()).toEqual({ a: 1 });
  });

  it('ships async functions and async arrows, which return promises', async () => {
    const p1 = roundTrip(async function (x: number) { await null; return x + 10; })(1);
    const p2 = roundTrip(async (x: number) => { await Promise.resolve(); return x * 10; })(2);
    expect(p1).toBeInstanceOf(Promise);
    expect(await p1).toBe(11);
    expect(await p2).toBe(20);
  });

  it('ships generators and async generators', async () => {
    const gen = roundTrip(function* (n: number) { for (let i = 0; i < n; i++) yield i; }) as (n: number) => Iterable<number>;
    expect([...gen(3)]).toEqual([0, 1, 2]);
    const agen = roundTrip(async function* (n: number) { for (let i = 0; i < n; i++) yield i * 2; }) as (n: number) => AsyncIterable<number>;
    const out: number[] = [];
    for await (const v of agen(3)) out.push(v);
    expect(out).toEqual([0, 2, 4]);
  });

  it('ships method shorthand and class methods by wrapping them in an object literal', async () => {
    const o = {
      twice(x: number) { return x * 2; },
      async later(x: number) { return x + 1; },
      *count() { yield 1; yield 2; },
      'with space'(x: number) { return -x; },
    };
    expect(roundTrip(o.twice)(4)).toBe(8);
    expect(await roundTrip(o.later)(1)).toBe(2);
    expect([...(roundTrip(o.count)() as Iterable<number>)]).toEqual([1, 2]);
    expect(roundTrip(o['with space'])(5)).toBe(-5);
    class C {
      static square(x: number) { return x * x; }
      half(x: number) { return x / 2; }
    }
    expect(roundTrip(C.square)(3)).toBe(9);
    expect(roundTrip(C.prototype.half)(3)).toBe(1.5);
  });

  it('rejects a method that uses super', () => {
    class B { f() { return 1; } }
    class D extends B { override f() { return super.f() + 1; } }
    expect(() => shipFunction(D.prototype.f)).toThrow(/super/);
  });

  it('survives a msgpack round trip as a plain value', () => {
    const shipped = shipFunction((a: number) => a);
    const back = unpack(pack(shipped)) as ShippedFunction;
    expect(back).toEqual(shipped);
    expect(Object.keys(back).sort()).toEqual(['hash', 'kind', 'name', 'source']);
  });

  it('runs the compiled function in strict mode and names it in stack traces', () => {
    const compiled = roundTrip(function boom() { throw new Error('boom'); });
    expect(() => compiled()).toThrow('boom');
    try {
      compiled();
    } catch (error) {
      expect((error as Error).stack).toMatch(/zerocos-fn\/boom\/[0-9a-f]{12}/);
    }
    expect(roundTrip(function (this: unknown) { return this; })()).toBeUndefined();
  });
});

describe('free variables', () => {
  it('rejects a closure over a module variable, naming it', () => {
    expect(() => shipFunction((x: number) => x * k)).toThrow(FreeVariableError);
    expect(freeNamesOf((x: number) => x * k)).toEqual(['k']);
    const error = (() => { try { shipFunction((x: number) => x * k); } catch (e) { return e as FreeVariableError; } })();
    expect(error).toBeInstanceOf(ZerocosError);
    expect(error?.code).toBe('EFREEVAR');
    expect(error?.message).toMatch(/'k'/);
    expect(error?.message).toMatch(/pass it as an argument, or use a module function/);
  });

  it('names every free variable, sorted and once each', () => {
    expect(freeNamesOf((x: number) => m + x * k + k + outerHelper(x))).toEqual(['k', 'm', 'outerHelper']);
  });

  it('treats writes to undeclared names as free references', () => {
    expect(freeNamesOf(() => { (globalThis as any).x = 1; leaked = 2; })).toEqual(['leaked']);
    expect(freeNamesOf(() => { [k2] = [1]; ({ a: k3 } = { a: 1 }); })).toEqual(['k2', 'k3']);
  });

  it('accepts parameters and inner declarations that shadow outer variables', () => {
    expect(roundTrip((k: number) => k * 2)(5)).toBe(10);
    expect(roundTrip((x: number) => { let k = x + 1; { const m = k; k = m * 2; } return k; })(1)).toBe(4);
    expect(roundTrip((x: number) => { for (const k of [x]) return k; return 0; })(7)).toBe(7);
    expect(roundTrip((x: number) => { try { throw x; } catch (k) { return k; } })(8)).toBe(8);
    expect(roundTrip((x: number) => { var k = x; return k; })(9)).toBe(9);
  });

  it('sees hoisted var and function declarations used before they appear', () => {
    expect(roundTrip((x: number) => { const r = helper(x); function helper(y: number) { return y + v; } var v = 1; return r; })(1)).toBeNaN();
    expect(roundTrip((x: number) => { function helper(y: number) { return y + 1; } return helper(x); })(1)).toBe(2);
  });

  it('allows standard and Node globals', async () => {
    const f = async (xs: number[]) => {
      const all = await Promise.all(xs.map((x) => Promise.resolve(x)));
      return JSON.stringify({ max: Math.max(...all), arr: Array.from(new Set(all)), n: Number.isFinite(all[0]), b: Buffer.from('a').length });
    };
    expect(JSON.parse((await roundTrip(f)([1, 2, 2])) as string)).toEqual({ max: 2, arr: [1, 2], n: true, b: 1 });
    expect(() => shipFunction(() => [globalThis, undefined, NaN, Infinity, Symbol.iterator, new Map(), new Uint8Array(1), structuredClone({}), new TextEncoder(), new URL('http://x'), setTimeout, console, new AbortController(), performance.now(), fetch, Reflect, new Proxy({}, {}), new RangeError()])).not.toThrow();
  });

  it('does not mistake property names and object keys for references', () => {
    expect(roundTrip((o: { k: number }) => ({ k: o.k, m: o?.k, ['x' + 'y']: 1 }))({ k: 2 })).toEqual({ k: 2, m: 2, xy: 1 });
    expect(freeNamesOf((o: any) => ({ [k]: o }))).toEqual(['k']);
    expect(freeNamesOf((o: any) => o[m])).toEqual(['m']);
    expect(freeNamesOf((o: any) => ({ k, o }))).toEqual(['k']);
  });

  it('does not mistake labels for variables', () => {
    expect(roundTrip(() => { let n = 0; outer: for (let i = 0; i < 3; i++) { for (;;) { n++; continue outer; } } return n; })()).toBe(3);
  });

  it('accepts destructuring params whose defaults use other params, and rejects defaults using outer variables', () => {
    const ok = ({ a, b = a * 2 }: { a: number; b?: number }, [c = b, ...rest]: number[] = [], ...more: number[]) => [a, b, c, rest, more];
    expect(roundTrip(ok)({ a: 1 }, [], 9)).toEqual([1, 2, 2, [], [9]]);
    expect(freeNamesOf(({ a = k }: { a?: number }) => a)).toEqual(['k']);
    expect(freeNamesOf((x = m) => x)).toEqual(['m']);
    expect(freeNamesOf(({ [k]: v }: any) => v)).toEqual(['k']);
  });

  it('accepts nested functions and classes declared inside the shipped function', () => {
    const f = (n: number) => {
      class Counter {
        static zero = 0;
        #count = Counter.zero;
        add(by: number) { this.#count += by; return this; }
        get value() { return this.#count; }
      }
      const twice = (x: number) => x * 2;
      function thrice(x: number) { return x * 3; }
      return new Counter().add(twice(n)).add(thrice(n)).value;
    };
    expect(roundTrip(f)(1)).toBe(5);
    expect(freeNamesOf(() => { class X extends (Base as any) {} return X; })).toEqual(['Base']);
    expect(freeNamesOf(() => () => () => k)).toEqual(['k']);
  });

  it('accepts this, arguments and new.target', () => {
    expect(roundTrip(function (this: unknown, ..._xs: unknown[]) { return [arguments.length, new.target === undefined]; })(1, 2)).toEqual([2, true]);
  });

  it('rejects require, module and the REPL-only module globals', () => {
    expect(freeNamesOf(() => require('node:fs'))).toEqual(['require']);
    expect(freeNamesOf(() => [module, __dirname])).toEqual(['__dirname', 'module']);
    expect(freeNamesOf(new Function('return fs.readFileSync') as () => unknown)).toEqual(['fs']);
  });

  it("accepts Node's globals that every worker has: process, Buffer, timers, streams", () => {
    const f = () => [process.pid, Buffer.from('x').length, typeof setTimeout, new URL('http://a/').host, new TextEncoder().encode('a').length, typeof structuredClone, typeof fetch, typeof ReadableStream, typeof global];
    expect(roundTrip(f)()).toEqual([process.pid, 1, 'function', 'a', 1, 'function', 'function', 'function', 'object']);
  });
});

describe('functions that cannot be shipped', () => {
  it('rejects native functions', () => {
    expect(() => shipFunction(Math.max)).toThrow(InvalidArgumentError);
    expect(() => shipFunction(Math.max)).toThrow(/native function 'max'/);
  });

  it('rejects bound functions', () => {
    const bound = ((x: number) => x).bind(null, 1);
    expect(() => shipFunction(bound)).toThrow(InvalidArgumentError);
    expect(() => shipFunction(bound)).toThrow(/bound function/);
  });

  it('rejects classes, getters and non-functions', () => {
    expect(() => shipFunction(class A {})).toThrow(/class 'A'/);
    const getter = Object.getOwnPropertyDescriptor({ get g() { return 1; } }, 'g')!.get!;
    expect(() => shipFunction(getter)).toThrow(InvalidArgumentError);
    expect(() => shipFunction(42 as unknown as Function)).toThrow(InvalidArgumentError);
  });
});

describe('shipClass', () => {
  type Ctor<T> = new (...args: any[]) => T;
  /** Ships a class, compiles it as a worker would, and returns the compiled class. */
  function roundTripClass<T>(cls: Ctor<T>): Ctor<T> {
    return new FunctionCache().compile(unpack(pack(shipClass(cls))) as ShippedFunction) as unknown as Ctor<T>;
  }

  function freeNamesOfClass(cls: Function): string[] {
    try {
      shipClass(cls);
    } catch (error) {
      expect(error).toBeInstanceOf(FreeVariableError);
      return (error as FreeVariableError).names;
    }
    throw new Error('expected a FreeVariableError');
  }

  it('ships a class with fields, a static block, private fields, getters and async methods', async () => {
    class Counter {
      static created = 0;
      static label: string;
      static {
        Counter.label = 'counter';
      }
      #count: number;
      readonly step = 1;
      constructor(start: number) {
        this.#count = start;
        Counter.created++;
      }
      get value() { return this.#count; }
      static isCounter(x: unknown) { return typeof x === 'object' && x !== null && #count in x; }
      add(by = this.step) { this.#count += by; return this.#count; }
      async addLater(by: number) { await Promise.resolve(); return this.add(by); }
    }
    const shipped = shipClass(Counter);
    expect(shipped).toMatchObject({ kind: 'source', name: 'Counter' });
    expect(shipped.source).toMatch(/^class Counter/);
    expect(shipped.hash).toBe(createHash('sha256').update(shipped.source).digest('hex'));
    const Remote = roundTripClass(Counter);
    expect(Remote).not.toBe(Counter);
    const c = new Remote(1);
    expect(c.value).toBe(1);
    expect(c.add()).toBe(2);
    expect(await c.addLater(3)).toBe(5);
    expect((Remote as unknown as typeof Counter).label).toBe('counter');
    expect((Remote as unknown as typeof Counter).created).toBe(1);
    expect((Remote as unknown as typeof Counter).isCounter(c)).toBe(true);
    expect((Remote as unknown as typeof Counter).isCounter(new Counter(0))).toBe(false); // a different class, different #count
    expect(() => (Remote as unknown as () => void)()).toThrow(TypeError); // classes still need new
  });

  it('compiles with compileShipped and FunctionCache, and new works on the result', () => {
    class Point {
      constructor(readonly x: number) {}
    }
    const cache = new FunctionCache();
    const P = cache.compile(shipClass(Point)) as unknown as typeof Point;
    expect(new P(1).x).toBe(1);
    expect(cache.compile(shipClass(Point))).toBe(P);
    expect(new (compileShipped(shipClass(Point)) as unknown as typeof Point)(2).x).toBe(2);
  });

  it('ships an anonymous class, and a class extending an allowed global or its own inner class', () => {
    const Anonymous = class { f() { return 1; } };
    expect(new (roundTripClass(Anonymous))().f()).toBe(1);
    class AppError extends Error {
      override name = 'AppError';
      constructor(readonly detail: string) { super(`app: ${detail}`); }
    }
    const E = roundTripClass(AppError);
    const e = new E('x');
    expect(e).toBeInstanceOf(Error);
    expect(e.message).toBe('app: x');
    class Outer {
      make() {
        class Base { hi() { return 'hi'; } }
        class Derived extends Base { override hi() { return super.hi() + '!'; } }
        return new Derived().hi();
      }
    }
    expect(new (roundTripClass(Outer))().make()).toBe('hi!');
  });

  it('rejects a class referring to a module variable, naming it', () => {
    class UsesK { f() { return k; } }
    class UsesMany {
      static s = m;
      a = k;
      static { outerHelper(1); }
      constructor() { leaked = 1; }
    }
    expect(() => shipClass(UsesK)).toThrow(FreeVariableError);
    expect(() => shipClass(UsesK)).toThrow(/'UsesK'.*'k'/);
    expect(freeNamesOfClass(UsesMany)).toEqual(['k', 'leaked', 'm', 'outerHelper']);
  });

  it('rejects a class extending a free variable, naming it', () => {
    class Derived extends Base {}
    expect(freeNamesOfClass(Derived)).toEqual(['Base']);
    expect(() => shipClass(Derived)).toThrow(/'Base'/);
  });

  it('rejects functions, native classes and non-functions, and shipFunction still rejects classes', () => {
    expect(() => shipClass(function f() {})).toThrow(InvalidArgumentError);
    expect(() => shipClass(() => 1)).toThrow(/not a class; use shipFunction/);
    expect(() => shipClass(Map)).toThrow(/native/);
    expect(() => shipClass({} as Function)).toThrow(InvalidArgumentError);
    expect(() => shipFunction(class A {})).toThrow(/use shipClass/);
  });
});

describe('the zerocos global', () => {
  it('accepts a shipped function calling zerocos.get, as the task runtime installs globalThis.zerocos', async () => {
    const f = async (ref: unknown) => (await zerocos.get(ref)) as number + 1;
    expect(() => shipFunction(f)).not.toThrow();
    (globalThis as { zerocos?: unknown }).zerocos = { get: async (x: unknown) => x };
    try {
      expect(await roundTrip(f)(1)).toBe(2);
    } finally {
      delete (globalThis as { zerocos?: unknown }).zerocos;
    }
  });
});

describe('compileShipped and FunctionCache', () => {
  it('rejects a hash that does not match the source', () => {
    const shipped = shipFunction((x: number) => x);
    const forged = { ...shipped, source: '(x) => x + 1' };
    expect(() => compileShipped(forged)).toThrow(HashMismatchError);
    expect(() => new FunctionCache().compile(forged)).toThrow(HashMismatchError);
    try {
      compileShipped(forged);
    } catch (error) {
      expect((error as HashMismatchError).code).toBe('EHASH');
    }
  });

  it('rejects values that are not shipped functions, and sources that are not functions', () => {
    expect(() => compileShipped({ kind: 'module' } as unknown as ShippedFunction)).toThrow(InvalidArgumentError);
    const source = '42';
    const notFn: ShippedFunction = { kind: 'source', source, name: 'x', hash: createHash('sha256').update(source).digest('hex') };
    expect(() => compileShipped(notFn)).toThrow(/not a function/);
  });

  it('returns the same compiled function for the same hash', () => {
    const cache = new FunctionCache();
    const shipped = shipFunction((x: number) => x + 1);
    const first = cache.compile(shipped);
    expect(cache.compile(unpack(pack(shipped)) as ShippedFunction)).toBe(first);
    expect(cache.compile(shipFunction((x: number) => x + 2))).not.toBe(first);
    expect(cache.size).toBe(2);
    expect(new FunctionCache().compile(shipped)).not.toBe(first);
  });

  it('drops the least recently used function beyond maxEntries', () => {
    const cache = new FunctionCache({ maxEntries: 2 });
    const a = shipFunction(() => 'a');
    const b = shipFunction(() => 'b');
    const c = shipFunction(() => 'c');
    const fa = cache.compile(a);
    cache.compile(b);
    expect(cache.compile(a)).toBe(fa); // a is now the most recently used
    cache.compile(c); // evicts b
    expect(cache.size).toBe(2);
    expect(cache.compile(a)).toBe(fa);
    expect(() => new FunctionCache({ maxEntries: 0 })).toThrow(InvalidArgumentError);
  });
});

declare let leaked: number;
declare let k2: number;
declare let k3: number;
declare const module: unknown;
declare const zerocos: { get(ref: unknown): Promise<unknown> };
