/**
 * The fenced code blocks of a Markdown file, each with the marker written above it.
 *
 * A marker is an HTML comment on the last non-empty line before the fence (invisible on a
 * rendered page), and says what the documentation test does with a TypeScript block:
 * - `<!-- run -->`: compile it, then run it as a program (it starts its own local cluster);
 *   `<!-- run: expect ["42", "[ 1, 4, 9 ]"] -->` also requires those lines on its stdout.
 * - `<!-- compile: why it cannot run here -->`: compile it only; the reason is printed.
 * - `<!-- fragment: declarations -->`: compile it after the given TypeScript declarations
 *   (the context a fragment assumes, e.g. `declare const self: ProcessContext;`), never run.
 * A TypeScript block without a marker fails the test: whoever writes one decides.
 */
import { readFileSync } from 'node:fs';

export type Marker =
  | { kind: 'run'; expect: string[] }
  | { kind: 'compile'; reason: string }
  | { kind: 'fragment'; context: string };

export interface CodeBlock {
  /** The Markdown file, relative to the repository. */
  file: string;
  /** 1-based line of the opening fence. */
  line: number;
  /** The fence's language (`ts`, `sh`...), or '' for none. */
  lang: string;
  code: string;
  marker?: Marker;
  /** A marker comment that could not be parsed, to report rather than ignore. */
  badMarker?: string;
}

const FENCE = /^```(\S*)\s*$/;
const COMMENT = /^<!--\s*(.*?)\s*-->$/;

/** Parses `run`, `run: expect [...]`, `compile: reason` or `fragment: declarations`. */
function parseMarker(text: string): Marker | undefined {
  if (text === 'run') return { kind: 'run', expect: [] };
  const expect = /^run:\s*expect\s+(\[.*\])$/.exec(text);
  if (expect) {
    const lines: unknown = JSON.parse(expect[1]!);
    if (Array.isArray(lines) && lines.every((line) => typeof line === 'string')) return { kind: 'run', expect: lines };
    return undefined;
  }
  const compile = /^compile:\s*(\S.*)$/.exec(text);
  if (compile) return { kind: 'compile', reason: compile[1]! };
  const fragment = /^fragment:\s*(\S.*)$/.exec(text);
  if (fragment) return { kind: 'fragment', context: fragment[1]! };
  return undefined;
}

/** The blocks of `path` (read from disk), `file` being the name to report them by. */
export function readBlocks(path: string, file: string): CodeBlock[] {
  const lines = readFileSync(path, 'utf8').split('\n');
  const blocks: CodeBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = FENCE.exec(lines[i]!);
    if (!open) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !/^```\s*$/.test(lines[i]!); i++) body.push(lines[i]!);
    let before = start - 1;
    while (before >= 0 && lines[before]!.trim() === '') before--;
    const comment = before >= 0 ? COMMENT.exec(lines[before]!.trim()) : null;
    const block: CodeBlock = { file, line: start + 1, lang: open[1]!, code: body.join('\n') };
    if (comment) {
      const marker = parseMarker(comment[1]!);
      if (marker) block.marker = marker;
      else block.badMarker = comment[1]!;
    }
    blocks.push(block);
  }
  return blocks;
}

/** TypeScript and JavaScript fences, the blocks the test compiles. */
export const isScript = (block: CodeBlock): boolean => ['ts', 'typescript', 'js', 'javascript', 'mjs'].includes(block.lang);

/** Shell fences. */
export const isShell = (block: CodeBlock): boolean => ['sh', 'bash', 'shell', 'console'].includes(block.lang);

/** A block's name in messages: `docs/jobs.md:7`. */
export const where = (block: CodeBlock): string => `${block.file}:${block.line}`;
