/**
 * The layer rule of lib/ (docs/architecture.md), enforced: a file imports only from its own
 * folder or from a lower layer, siblings of one layer do not import each other, nothing but the
 * internal entry imports lib/host, and the folders' import graph has no cycle.
 *
 * Imports are read from the source text (static `import`/`export ... from`, `import type`, and
 * `import('...')` with a literal), which is all lib/ uses; a specifier that is not relative
 * (a package) is not a layer and is skipped.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const LIB = fileURLToPath(new URL('../../lib', import.meta.url));

/** Lowest first. Folders in one entry are siblings: the same layer, and they must not import each other. */
const LAYERS: readonly (readonly string[])[] = [
  ['common'],
  ['wire'],
  ['transport'],
  ['node'],
  ['cluster'],
  ['task'],
  // Each of these stands on tasks (and the layers below) only; process groups use neither
  // actors, jobs, MapReduce nor streams, so they are a sibling, not a layer above them.
  ['actor', 'jobs', 'mapreduce', 'stream', 'collective'],
  ['host'],
  ['index'],
  ['internal'],
];

/** Only these may import lib/host (the hosts compose every layer; the user API does not expose them). */
const HOST_IMPORTERS = new Set(['host', 'internal']);

interface Edge {
  file: string;
  from: string;
  to: string;
  specifier: string;
}

/** The layer unit of a file under lib/: its top folder, or for a file directly in lib/ its name without extension. */
function unitOf(pathInLib: string): string {
  const [first, ...rest] = pathInLib.split('/');
  return rest.length ? first! : first!.replace(/\.(ts|js)$/, '');
}

function rankOf(unit: string): number {
  return LAYERS.findIndex((layer) => layer.includes(unit));
}

/** Every relative import of a TypeScript source, as written. */
export function importsOf(source: string): string[] {
  const specifiers: string[] = [];
  const patterns = [/\b(?:import|export)\s+(?:type\s+)?[^'";]*?\bfrom\s+['"]([^'"]+)['"]/g, /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g, /^\s*import\s+['"]([^'"]+)['"]/gm];
  for (const pattern of patterns) for (const match of source.matchAll(pattern)) specifiers.push(match[1]!);
  return specifiers.filter((specifier) => specifier.startsWith('.'));
}

/** What is wrong with these edges: upward or sideways imports, imports of lib/host from elsewhere, unknown folders. */
export function violations(edges: readonly Edge[]): string[] {
  const problems: string[] = [];
  for (const edge of edges) {
    const from = rankOf(edge.from);
    const to = rankOf(edge.to);
    if (from < 0) problems.push(`${edge.file}: lib/${edge.from} is in no layer (add it to LAYERS and docs/architecture.md)`);
    else if (to < 0) problems.push(`${edge.file}: imports ${edge.specifier}, in lib/${edge.to}, which is in no layer`);
    else if (edge.from === edge.to) continue;
    else if (edge.to === 'host' && !HOST_IMPORTERS.has(edge.from)) problems.push(`${edge.file}: imports ${edge.specifier}: only lib/internal.ts and lib/host itself may import lib/host`);
    else if (to > from) problems.push(`${edge.file}: imports ${edge.specifier} from a higher layer (${edge.from} → ${edge.to})`);
    else if (to === from) problems.push(`${edge.file}: imports ${edge.specifier} from a sibling of its layer (${edge.from} → ${edge.to})`);
  }
  return problems;
}

/** The cycles of the folders' import graph (self-edges aside), each as a path `a → b → a`. */
export function cycles(edges: readonly Edge[]): string[] {
  const next = new Map<string, Set<string>>();
  for (const { from, to } of edges) if (from !== to) (next.get(from) ?? next.set(from, new Set()).get(from)!).add(to);
  const found: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const visit = (unit: string): void => {
    state.set(unit, 'open');
    path.push(unit);
    for (const to of next.get(unit) ?? []) {
      if (state.get(to) === 'open') found.push([...path.slice(path.indexOf(to)), to].join(' → '));
      else if (!state.has(to)) visit(to);
    }
    path.pop();
    state.set(unit, 'done');
  };
  for (const unit of next.keys()) if (!state.has(unit)) visit(unit);
  return found;
}

function sourcesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourcesUnder(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [path] : [];
  });
}

function libEdges(): Edge[] {
  return sourcesUnder(LIB).flatMap((path) => {
    const file = relative(LIB, path);
    return importsOf(readFileSync(path, 'utf8')).map((specifier) => {
      const target = relative(LIB, resolve(dirname(path), specifier));
      if (target.startsWith('..')) return { file, from: unitOf(file), to: '(outside lib)', specifier };
      return { file, from: unitOf(file), to: unitOf(target), specifier };
    });
  });
}

describe('the layers of lib/', () => {
  const edges = libEdges();

  it('reads the imports of every layer', () => {
    // A reader that found nothing would pass every rule below.
    const seen = new Set(edges.map((edge) => edge.from));
    for (const layer of LAYERS) for (const unit of layer) expect(seen.has(unit) || unit === 'common', `no import read from lib/${unit}`).toBe(true);
    expect(edges.length).toBeGreaterThan(200);
  });

  it('imports only from its own folder or a lower layer, and lib/host only from lib/internal.ts', () => {
    expect(violations(edges)).toEqual([]);
  });

  it('has no cycle between folders', () => {
    expect(cycles(edges)).toEqual([]);
  });

  it('the checks catch an upward import, a sibling import, an import of lib/host and a cycle', () => {
    const edge = (from: string, to: string): Edge => ({ file: `${from}/x.ts`, from, to, specifier: `../${to}/y.js` });
    expect(violations([edge('wire', 'node')])).toEqual([expect.stringContaining('higher layer (wire → node)')]);
    expect(violations([edge('actor', 'stream')])).toEqual([expect.stringContaining('sibling')]);
    expect(violations([edge('index', 'host')])).toEqual([expect.stringContaining('only lib/internal.ts')]);
    expect(violations([edge('ops', 'common')])).toEqual([expect.stringContaining('in no layer')]);
    expect(violations([edge('task', 'cluster'), edge('internal', 'host')])).toEqual([]);
    expect(cycles([edge('a', 'b'), edge('b', 'c'), edge('c', 'a')])).toEqual(['a → b → c → a']);
    expect(importsOf(`import { a } from '../x/a.js';\nimport type { B } from './b.js';\nexport { c } from '../c.js';\nconst d = await import('./d.js');\nimport 'zeromq';`)).toEqual([
      '../x/a.js',
      './b.js',
      '../c.js',
      './d.js',
    ]);
  });
});
