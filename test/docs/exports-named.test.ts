import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import * as userApi from '../../lib/index.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const read = (path: string) => readFileSync(`${root}${path}`, 'utf8');

/** Every name `lib/index.ts` exports, types included (read from its export clauses). */
function exportedNames(): string[] {
  const source = read('lib/index.ts');
  const names = new Set<string>();
  for (const clause of source.matchAll(/export\s+(?:type\s+)?\{([^}]*)\}/g)) {
    for (const part of clause[1]!.split(',')) {
      const name = part.trim().replace(/^type\s+/, '').split(/\s+as\s+/).pop()!.trim();
      if (name) names.add(name);
    }
  }
  for (const declaration of source.matchAll(/export\s+(?:const|function|class|type|interface|enum)\s+(\w+)/g)) names.add(declaration[1]!);
  return [...names].sort();
}

// Issue 15: the public face is the documented user API, so the README or a guide names each export.
describe('the user API', () => {
  it('has every export named in the README or a guide in docs/', () => {
    const docs = ['README.md', ...readdirSync(`${root}docs`).filter((file) => file.endsWith('.md')).map((file) => `docs/${file}`)].map(read).join('\n');
    const names = exportedNames();
    // The parse found the runtime exports too (a check that it reads the file right).
    expect(names).toEqual(expect.arrayContaining(Object.keys(userApi)));
    expect(names.filter((name) => !new RegExp(`\\b${name}\\b`).test(docs))).toEqual([]);
  });
});
