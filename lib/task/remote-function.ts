/**
 * Self-contained remote functions and classes: the source is shipped to a worker and compiled
 * there. Only what the source text itself declares (plus an allow-list of globals) exists on
 * the worker, so {@link shipFunction} and {@link shipClass} reject any free variable before
 * anything is sent.
 */
import { createHash } from 'node:crypto';
import { parse } from 'acorn';
import type { Node as AstNode } from 'acorn';
import { InvalidArgumentError, ZerocosError } from '../common/errors.js';
import { childNodes, freeVariables } from './free-variables.js';

/**
 * A function or class as it travels to a worker: a plain value, safe for msgpack.
 * `source` is always a parenthesisable JavaScript expression evaluating to the function
 * (a class expression for {@link shipClass}).
 */
export interface ShippedFunction {
  kind: 'source';
  /** The function's source, as an expression (method shorthand is wrapped, see {@link shipFunction}). */
  source: string;
  /** `fn.name` (or the class name) at the caller (may be empty for anonymous arrows); used in messages and stacks. */
  name: string;
  /** sha256 hex of `source`; workers cache compiled functions by it. */
  hash: string;
}

/** A shipped function refers to variables that will not exist on the worker. */
export class FreeVariableError extends ZerocosError {
  override readonly code = 'EFREEVAR';
  constructor(
    /** The free variables, sorted and without duplicates. */
    readonly names: string[],
    functionName: string,
  ) {
    const list = names.map((n) => `'${n}'`).join(', ');
    super(
      `function ${functionName ? `'${functionName}' ` : ''}cannot be shipped: it refers to ` +
        `${names.length === 1 ? 'the free variable' : 'the free variables'} ${list}, which will not exist ` +
        `on the worker; ${names.length === 1 ? 'pass it as an argument' : 'pass them as arguments'}, or use a module function`,
    );
  }
}

/** Shipped content does not hash to its declared sha256 (corrupted or forged). */
export class HashMismatchError extends ZerocosError {
  override readonly code = 'EHASH';
  constructor(
    readonly expected: string,
    readonly actual: string,
    /** What was checked, for the message. */
    subject = 'shipped function',
  ) {
    super(`${subject} hash mismatch: declared ${expected}, content hashes to ${actual}`);
  }
}

/**
 * Prepares a self-contained function for shipping: parses `fn.toString()` and rejects it if
 * it refers to anything other than its own parameters and declarations and the allowed
 * globals. Closing over a module variable is the usual mistake; the error names every such
 * variable.
 *
 * Accepted: function declarations and expressions, arrows (expression or block body), async
 * functions and arrows, generators and async generators, and method shorthand (`{ f(x) {} }.f`
 * or a class method), which is shipped as `({ f(x) {} }).f` and so must not use `super` or
 * private names. The function is checked, and on the worker runs, in strict mode, as it did
 * in the ESM module it came from.
 *
 * @throws {FreeVariableError} the function refers to free variables (all named, sorted).
 * @throws {InvalidArgumentError} not a function, a class, a native or bound function, or
 *   source that does not parse as a strict-mode function.
 * @example
 * const shipped = shipFunction((xs: number[]) => Math.max(...xs));
 * // later, on the worker: new FunctionCache().compile(shipped)([1, 5, 2]) === 5
 */
export function shipFunction(fn: Function): ShippedFunction {
  if (typeof fn !== 'function') throw new InvalidArgumentError(`expected a function, got ${typeof fn}`);
  const text = Function.prototype.toString.call(fn);
  if (/\{\s*\[native code\]\s*\}\s*$/.test(text)) {
    throw new InvalidArgumentError(
      fn.name.startsWith('bound ')
        ? `bound function '${fn.name}' cannot be shipped: its target and bound values are not visible; ship the original function and pass the values as arguments`
        : `native function '${fn.name}' cannot be shipped: it has no source`,
    );
  }
  const { source, root } = parseFunctionSource(text, fn.name);
  const free = freeVariables(root);
  if (free.length > 0) throw new FreeVariableError(free, fn.name);
  return { kind: 'source', source, name: fn.name, hash: sha256(source) };
}

/**
 * Prepares a self-contained class for shipping (an actor's class, say): the whole class text,
 * as from `cls.toString()`, shipped as a class expression. The same free-variable check as
 * {@link shipFunction} covers the constructor, methods, accessors, fields and static blocks,
 * and the `extends` clause: a class can only extend a class it declares itself or an allowed
 * global (`Error`, `EventTarget`, ...). On the worker, {@link compileShipped} returns the class.
 *
 * @throws {FreeVariableError} the class refers to free variables (all named, sorted).
 * @throws {InvalidArgumentError} not a class (plain functions go through {@link shipFunction}),
 *   or a native class.
 * @example
 * const shipped = shipClass(class Counter { n = 0; add(by: number) { return (this.n += by); } });
 * // later, on the worker: const Counter = cache.compile(shipped); new Counter().add(2) === 2
 */
export function shipClass(cls: Function): ShippedFunction {
  if (typeof cls !== 'function') throw new InvalidArgumentError(`expected a class, got ${typeof cls}`);
  const source = Function.prototype.toString.call(cls);
  const { node, error } = tryParseExpression(source);
  if (node?.type !== 'ClassExpression') {
    throw new InvalidArgumentError(
      `'${cls.name}' cannot be shipped as a class: ` +
        (/\{\s*\[native code\]\s*\}\s*$/.test(source) ? 'it is native and has no source' : error ? `its source does not parse (${error})` : 'it is not a class; use shipFunction'),
    );
  }
  const free = freeVariables(node as ClassNode);
  if (free.length > 0) throw new FreeVariableError(free, cls.name);
  return { kind: 'source', source, name: cls.name, hash: sha256(source) };
}

/**
 * Worker side: compiles a shipped function after checking its hash. Compiling runs the
 * source as the body of `new Function`, in strict mode, in this realm: the function sees
 * the globals and nothing else (not the worker's own module scope), values it returns are
 * ordinary objects of this realm (no cross-realm `instanceof` surprises as with `vm`
 * contexts), and `import()` works. A `//# sourceURL=zerocos-fn/<name>/<hash>` comment makes
 * stack traces name the shipped function. A {@link shipClass} source compiles to the class
 * (call it with `new`). Prefer {@link FunctionCache} to compile each hash once.
 *
 * @throws {InvalidArgumentError} the value is not a ShippedFunction, or its source is not a function.
 * @throws {HashMismatchError} `hash` is not the sha256 of `source`.
 */
export function compileShipped(shipped: ShippedFunction): (...args: unknown[]) => unknown {
  if (!isShippedFunction(shipped)) throw new InvalidArgumentError('not a shipped function: expected {kind: "source", source, name, hash}');
  const actual = sha256(shipped.source);
  if (actual !== shipped.hash) throw new HashMismatchError(shipped.hash, actual);
  const label = `zerocos-fn/${shipped.name.replace(/[^\w$.-]/g, '_') || 'anonymous'}/${shipped.hash.slice(0, 12)}`;
  let compiled: unknown;
  try {
    compiled = new Function(`'use strict';\nreturn (${shipped.source}\n);\n//# sourceURL=${label}`)();
  } catch (error) {
    throw new InvalidArgumentError(`shipped function '${shipped.name}' does not compile: ${String(error)}`, { cause: error });
  }
  if (typeof compiled !== 'function') throw new InvalidArgumentError(`shipped source of '${shipped.name}' is not a function`);
  return compiled as (...args: unknown[]) => unknown;
}

/** Options of a {@link FunctionCache}. */
export interface FunctionCacheOptions {
  /** Compiled functions kept; the least recently used is dropped beyond it. @default 1000 */
  maxEntries?: number;
}

/** A worker's compiled shipped functions, by hash: each source is compiled once. */
export class FunctionCache {
  readonly #compiled = new Map<string, (...args: unknown[]) => unknown>();
  readonly #maxEntries: number;

  constructor(options: FunctionCacheOptions = {}) {
    this.#maxEntries = options.maxEntries ?? 1000;
    if (!Number.isInteger(this.#maxEntries) || this.#maxEntries < 1) throw new InvalidArgumentError('maxEntries must be a positive integer');
  }

  /** Number of compiled functions held. */
  get size(): number {
    return this.#compiled.size;
  }

  /**
   * The compiled function for `shipped`: the same function object for the same hash.
   * The hash is checked against the source only when compiling; a cached hash is trusted.
   * @throws as {@link compileShipped}.
   */
  compile(shipped: ShippedFunction): (...args: unknown[]) => unknown {
    const hit = isShippedFunction(shipped) ? this.#compiled.get(shipped.hash) : undefined;
    if (hit) {
      // re-insert to keep Map order = least recently used first
      this.#compiled.delete(shipped.hash);
      this.#compiled.set(shipped.hash, hit);
      return hit;
    }
    const compiled = compileShipped(shipped);
    this.#compiled.set(shipped.hash, compiled);
    if (this.#compiled.size > this.#maxEntries) this.#compiled.delete(this.#compiled.keys().next().value as string);
    return compiled;
  }
}

/** True when `value` has the shape of a {@link ShippedFunction} (the hash is not checked). */
export function isShippedFunction(value: unknown): value is ShippedFunction {
  const v = value as ShippedFunction;
  return (
    typeof value === 'object' && value !== null && v.kind === 'source' &&
    typeof v.source === 'string' && typeof v.name === 'string' && typeof v.hash === 'string'
  );
}

function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

type FunctionNode = AstNode & { type: 'FunctionExpression' | 'ArrowFunctionExpression' };
type ClassNode = AstNode & { type: 'ClassExpression' };

/** Parses `fn.toString()` into an expression source and its function node. */
function parseFunctionSource(text: string, name: string): { source: string; root: FunctionNode } {
  const asExpression = tryParseExpression(text);
  if (asExpression.node?.type === 'ClassExpression') {
    throw new InvalidArgumentError(`class '${name}' cannot be shipped as a function; use shipClass, or ship a function that constructs it`);
  }
  if (asExpression.node?.type === 'FunctionExpression' || asExpression.node?.type === 'ArrowFunctionExpression') {
    return { source: text, root: asExpression.node as FunctionNode };
  }
  // Method shorthand (`f(x) { }`, `async *g() { }`, `'a b'() { }`): wrap in an object literal.
  const wrapped = tryParseExpression(`({ ${text}\n})`);
  const object = wrapped.node as (AstNode & { properties?: AstNode[] }) | undefined;
  const property = object?.type === 'ObjectExpression' && object.properties?.length === 1 ? (object.properties[0] as AstNode & Record<string, unknown>) : undefined;
  if (property?.type === 'Property' && property.method === true && property.computed === false) {
    const key = property.key as AstNode & { name?: string; value?: unknown };
    const access = key.type === 'Identifier' ? `.${key.name}` : `[${JSON.stringify(String(key.value))}]`;
    const root = property.value as FunctionNode;
    if (containsSuper(root)) throw new InvalidArgumentError(`method '${name}' cannot be shipped: it uses super, which belongs to the object or class it was defined in`);
    return { source: `({ ${text}\n})${access}`, root };
  }
  throw new InvalidArgumentError(
    `function '${name}' cannot be shipped: its source does not parse as a strict-mode function` +
      (asExpression.error ? ` (${asExpression.error})` : '') +
      '; getters, setters and methods with computed names are not supported',
  );
}

function tryParseExpression(expression: string): { node?: AstNode; error?: string } {
  try {
    // 'use strict' so that the check matches how the worker compiles it (see compileShipped).
    const program = parse(`'use strict';\n(${expression}\n)`, { ecmaVersion: 'latest', sourceType: 'script' });
    const statement = program.body[1];
    if (program.body.length !== 2 || statement?.type !== 'ExpressionStatement') return { error: 'not a single expression' };
    return { node: statement.expression };
  } catch (error) {
    return { error: error instanceof Error ? error.message : String(error) };
  }
}

function containsSuper(node: AstNode): boolean {
  if (node.type === 'Super') return true;
  // super inside a nested class refers to that class and is fine
  if (node.type === 'ClassExpression' || node.type === 'ClassDeclaration') return false;
  return childNodes(node).some(containsSuper);
}
