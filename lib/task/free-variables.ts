/**
 * The free-variable check of shipped code (split from remote-function.ts): which identifiers a
 * function or class refers to that it neither declares nor may take from a worker's globals.
 * Shipped code travels as source, so such a name would be undefined (or another value) there.
 */
import type { Node as AstNode, Pattern } from 'acorn';

/**
 * The globals a shipped function may use. Standard ECMAScript globals, plus the Node/web
 * globals that exist on every worker (a worker is a Node >= 20 process). `process` and `global`
 * are among them: they are the worker's own (its pid, env and cwd, not the caller's), which is
 * what code running there means by them. Deliberately absent: `require`, `module`, `exports`,
 * `__dirname`, `__filename` (they do not exist in ESM workers), and the built-in modules that
 * only Node's REPL and `-e` expose as globals (`fs`, `path`...). `eval` is allowed, but what it
 * evaluates at run time is not checked.
 */
const ALLOWED_GLOBALS: ReadonlySet<string> = new Set([
  // ECMAScript values and functions
  'globalThis', 'undefined', 'NaN', 'Infinity', 'eval', 'isNaN', 'isFinite', 'parseInt', 'parseFloat',
  'encodeURI', 'encodeURIComponent', 'decodeURI', 'decodeURIComponent', 'escape', 'unescape',
  // ECMAScript constructors and namespaces
  'Object', 'Function', 'Array', 'Number', 'String', 'Boolean', 'Symbol', 'BigInt', 'Date', 'RegExp',
  'Promise', 'Map', 'Set', 'WeakMap', 'WeakSet', 'WeakRef', 'FinalizationRegistry', 'Proxy', 'Reflect',
  'Math', 'JSON', 'Intl', 'Atomics', 'ArrayBuffer', 'SharedArrayBuffer', 'DataView',
  'Int8Array', 'Uint8Array', 'Uint8ClampedArray', 'Int16Array', 'Uint16Array', 'Int32Array',
  'Uint32Array', 'Float32Array', 'Float64Array', 'BigInt64Array', 'BigUint64Array',
  'Error', 'AggregateError', 'EvalError', 'RangeError', 'ReferenceError', 'SyntaxError', 'TypeError',
  'URIError',
  // Node and web globals present in every Node >= 20 worker
  'console', 'queueMicrotask', 'structuredClone', 'setTimeout', 'clearTimeout', 'setInterval',
  'clearInterval', 'setImmediate', 'clearImmediate', 'TextEncoder', 'TextDecoder', 'URL',
  'URLSearchParams', 'AbortController', 'AbortSignal', 'Event', 'EventTarget', 'performance',
  'Buffer', 'atob', 'btoa', 'crypto', 'Blob', 'fetch', 'Headers', 'Request', 'Response', 'FormData',
  'DOMException', 'MessageChannel', 'MessagePort', 'MessageEvent', 'BroadcastChannel', 'process', 'global',
  'WebAssembly', 'CustomEvent', 'File', 'Crypto', 'CryptoKey', 'SubtleCrypto', 'PerformanceObserver',
  'PerformanceEntry', 'PerformanceMark', 'PerformanceMeasure', 'ReadableStream', 'WritableStream',
  'TransformStream', 'TextEncoderStream', 'TextDecoderStream', 'CompressionStream', 'DecompressionStream',
  'ByteLengthQueuingStrategy', 'CountQueuingStrategy',
  // the public API namespace, which the task runtime installs as globalThis.zerocos on workers, so
  // code written against `import * as zerocos from 'zerocos'` can call zerocos.get(...) when shipped
  'zerocos',
  // not variables, but parsed as identifiers
  'arguments',
]);

/** One lexical scope; `fn` scopes also receive `var` declarations. */
interface Scope {
  readonly names: Set<string>;
  readonly parent: Scope | undefined;
  readonly fn: boolean;
}

/**
 * The identifiers `root` refers to that neither it declares (in any nested scope, with
 * hoisting) nor are allowed globals; sorted, without duplicates. Writing to an undeclared
 * name counts as a reference. Declarations are collected during the walk and references
 * resolved after it, so hoisted `var`/function declarations are seen before their use.
 */
export function freeVariables(root: AstNode): string[] {
  const references: { name: string; scope: Scope }[] = [];
  const newScope = (parent: Scope | undefined, fn: boolean): Scope => ({ names: new Set(), parent, fn });
  const functionScopeOf = (scope: Scope): Scope => {
    let s = scope;
    while (!s.fn && s.parent) s = s.parent;
    return s;
  };

  const declare = (pattern: Pattern | AstNode, into: Scope, scope: Scope): void => {
    const p = pattern as AstNode & Record<string, any>;
    switch (p.type) {
      case 'Identifier': into.names.add(p.name); break;
      case 'ObjectPattern':
        for (const prop of p.properties) {
          if (prop.type === 'RestElement') declare(prop.argument, into, scope);
          else {
            if (prop.computed) walk(prop.key, scope);
            declare(prop.value, into, scope);
          }
        }
        break;
      case 'ArrayPattern': for (const element of p.elements) if (element) declare(element, into, scope); break;
      case 'RestElement': declare(p.argument, into, scope); break;
      case 'AssignmentPattern': declare(p.left, into, scope); walk(p.right, scope); break;
      default: walk(p, scope); // not a binding pattern (cannot happen in declarations)
    }
  };

  const walkFunction = (fn: AstNode & Record<string, any>, scope: Scope): void => {
    const inner = newScope(scope, true);
    // A function expression's own name is bound inside it (a root declaration is parsed as an expression too).
    if (fn.id && fn.type === 'FunctionExpression') inner.names.add(fn.id.name);
    for (const param of fn.params) declare(param, inner, inner);
    walk(fn.body, inner);
  };

  const walkClass = (cls: AstNode & Record<string, any>, scope: Scope): void => {
    if (cls.superClass) walk(cls.superClass, scope);
    const inner = newScope(scope, false);
    if (cls.id) inner.names.add(cls.id.name);
    for (const member of cls.body.body) {
      if (member.type === 'StaticBlock') {
        const block = newScope(inner, true);
        for (const statement of member.body) walk(statement, block);
        continue;
      }
      if (member.computed) walk(member.key, inner);
      if (member.value) walk(member.value, member.type === 'PropertyDefinition' ? newScope(inner, true) : inner);
    }
  };

  const walk = (node: AstNode, scope: Scope): void => {
    const n = node as AstNode & Record<string, any>;
    switch (n.type) {
      case 'Identifier': references.push({ name: n.name, scope }); return;
      case 'PrivateIdentifier': case 'MetaProperty': case 'Literal': case 'ThisExpression': case 'Super': return;
      case 'FunctionExpression': case 'ArrowFunctionExpression': walkFunction(n, scope); return;
      case 'FunctionDeclaration': scope.names.add(n.id.name); walkFunction(n, scope); return;
      case 'ClassExpression': walkClass(n, scope); return;
      case 'ClassDeclaration': scope.names.add(n.id.name); walkClass(n, scope); return;
      case 'VariableDeclaration': {
        const into = n.kind === 'var' ? functionScopeOf(scope) : scope;
        for (const declarator of n.declarations) {
          declare(declarator.id, into, scope);
          if (declarator.init) walk(declarator.init, scope);
        }
        return;
      }
      case 'MemberExpression':
        walk(n.object, scope);
        if (n.computed) walk(n.property, scope);
        return;
      case 'Property': case 'MethodDefinition': case 'PropertyDefinition':
        if (n.computed) walk(n.key, scope);
        if (n.value) walk(n.value, scope);
        return;
      case 'LabeledStatement': walk(n.body, scope); return;
      case 'BreakStatement': case 'ContinueStatement': return;
      case 'CatchClause': {
        const inner = newScope(scope, false);
        if (n.param) declare(n.param, inner, inner);
        walk(n.body, inner);
        return;
      }
      case 'BlockStatement': case 'ForStatement': case 'ForInStatement': case 'ForOfStatement': case 'SwitchStatement': {
        if (n.type === 'SwitchStatement') walk(n.discriminant, scope);
        const inner = newScope(scope, false);
        for (const child of childNodes(n)) if (child !== n.discriminant) walk(child, inner);
        return;
      }
      default:
        for (const child of childNodes(n)) walk(child, scope);
    }
  };

  // A root class's `extends` is resolved in this outermost scope, where nothing is declared.
  if (root.type === 'ClassExpression') walkClass(root, newScope(undefined, true));
  else walkFunction(root, newScope(undefined, true));
  const free = new Set<string>();
  for (const { name, scope } of references) {
    let s: Scope | undefined = scope;
    while (s && !s.names.has(name)) s = s.parent;
    if (!s && !ALLOWED_GLOBALS.has(name)) free.add(name);
  }
  return [...free].sort();
}

/** The AST children of a node, in source order. */
export function childNodes(node: AstNode): AstNode[] {
  const children: AstNode[] = [];
  for (const [key, value] of Object.entries(node)) {
    if (key === 'type' || key === 'start' || key === 'end' || key === 'loc' || key === 'range') continue;
    if (Array.isArray(value)) {
      for (const item of value) if (isAstNode(item)) children.push(item);
    } else if (isAstNode(value)) children.push(value);
  }
  return children;
}

function isAstNode(value: unknown): value is AstNode {
  return typeof value === 'object' && value !== null && typeof (value as AstNode).type === 'string';
}
