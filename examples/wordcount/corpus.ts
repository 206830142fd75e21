/**
 * The word-count corpus: English-looking text generated from a seed, so every run (and every
 * host) gets the same files, and the word-count example and benchmark count the same words.
 *
 * Words are drawn from a Zipf distribution (the r-th most frequent word appears about 1/r^1.07
 * as often as the first, as in English text) over a vocabulary of 248 common English words
 * followed by made-up words built from English syllables. Text runs as sentences (a capital
 * first letter, commas, full stops) wrapped at 72 columns, with a blank line between paragraphs.
 *
 * Generated files are cached in `os.tmpdir()/zerocos-wordcount-<hash of the parameters>/` and
 * reused while they are complete (a manifest listing every file and its size is written last).
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

export interface CorpusOptions {
  /** Size in MB (10^6 bytes), roughly. */
  mb: number;
  /** @default 1 */
  seed?: number;
  /** Number of files. @default max(8, ceil(mb / 2)): 2 MB each, at least 8 */
  files?: number;
  /** The parent of the cache directory; with `--peers`, it must be readable on every worker. @default os.tmpdir() */
  root?: string;
  /** Called before the files are generated (not when they are cached), with the directory they will be in. */
  onGenerate?: (dir: string) => void;
}

export interface Corpus {
  dir: string;
  /** Absolute paths of the files. */
  files: string[];
  bytes: number;
  words: number;
  /** Whether this call wrote the files (false: they were already cached). */
  generated: boolean;
  /** Time taken to generate or check the files. */
  ms: number;
}

interface Manifest {
  files: { name: string; bytes: number }[];
  bytes: number;
  words: number;
}

/** Bump when the generated text changes, so old caches are not reused. */
const GENERATOR_VERSION = 1;
const VOCABULARY_SIZE = 30_000;
const ZIPF_EXPONENT = 1.07;
const LINE_WIDTH = 72;

/** 248 of the most common English words, most frequent first (roughly, after the usual frequency lists). */
const COMMON = `the of and to a in is you that it he was for on are as with his they i at be this have from or
one had by word but not what all were we when your can said there use an each which she do how their if
will up other about out many then them these so some her would make like him into time has look two more
write go see number no way could people my than first water been call who oil its now find long down day
did get come made may part over new sound take only little work know place year live me back give most very
after thing our just name good sentence man think say great where help through much before line right too
mean old any same tell boy follow came want show also around form three small set put end does another well
large must big even such because turn here why ask went men read need land different home us move try kind
hand picture again change off play spell air away animal house point page letter mother answer found study
still learn should world high every near add food between own below country plant last school father keep
tree never start city earth eye light thought head under story saw left few while along might close
something seem next hard open example begin life always those both paper together got group often run`
  .split(/\s+/)
  .filter(Boolean);

const ONSETS = ['b', 'br', 'c', 'ch', 'cl', 'cr', 'd', 'dr', 'f', 'fl', 'fr', 'g', 'gl', 'gr', 'h', 'j', 'k', 'l', 'm', 'n', 'p', 'pl', 'pr', 'qu', 'r', 's', 'sc', 'sh', 'sl', 'sm', 'sn', 'sp', 'st', 'str', 'sw', 't', 'th', 'tr', 'v', 'w', 'wh', 'y', 'z', ''];
const VOWELS = ['a', 'e', 'i', 'o', 'u', 'ai', 'ea', 'ee', 'ie', 'oa', 'oo', 'ou', 'y'];
const CODAS = ['', '', '', 'n', 'r', 's', 't', 'l', 'd', 'm', 'ng', 'nd', 'nt', 'st', 'ck', 'sh', 'th', 'rt', 'ss', 'x'];
const SUFFIXES = ['', '', '', '', 'ing', 'ed', 'er', 'ly', 'ness', 'tion', 'able', 's', 'es', 'ment', 'ful'];

/** mulberry32: a small, fast, seeded PRNG; returns floats in [0, 1). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The vocabulary, most frequent first: the common words, then made-up ones (distinct, lowercase letters only). */
export function vocabulary(size: number, random: () => number): string[] {
  const pick = <T>(list: T[]) => list[Math.floor(random() * list.length)]!;
  const words = COMMON.slice(0, size);
  const seen = new Set(words);
  while (words.length < size) {
    const syllables = random() < 0.4 ? 1 : 2 + Math.floor(random() * random() * 2);
    let word = '';
    for (let s = 0; s < syllables; s++) word += pick(ONSETS) + pick(VOWELS) + pick(CODAS);
    word += pick(SUFFIXES);
    if (word.length < 3 || word.length > 10 || seen.has(word)) continue;
    seen.add(word);
    words.push(word);
  }
  return words;
}

/** Walker's alias method for drawing ranks 0..n-1 with P(r) ∝ 1/(r+1)^s in constant time. */
function zipfSampler(n: number, s: number, random: () => number): () => number {
  const weights = Float64Array.from({ length: n }, (_, r) => 1 / Math.pow(r + 1, s));
  const total = weights.reduce((a, b) => a + b, 0);
  const prob = weights.map((w) => (w * n) / total);
  const alias = new Int32Array(n);
  const small: number[] = [];
  const large: number[] = [];
  prob.forEach((p, i) => (p < 1 ? small : large).push(i));
  while (small.length > 0 && large.length > 0) {
    const less = small.pop()!;
    const more = large.pop()!;
    alias[less] = more;
    prob[more] = prob[more]! + prob[less]! - 1;
    (prob[more]! < 1 ? small : large).push(more);
  }
  for (const i of [...small, ...large]) prob[i] = 1;
  return () => {
    const i = Math.floor(random() * n);
    return random() < prob[i]! ? i : alias[i]!;
  };
}

/** Writes text of about `bytes` bytes; returns it and the number of words in it. */
function generateText(bytes: number, words: string[], rank: () => number, random: () => number): { text: string; words: number } {
  const lines: string[] = [];
  let line = '';
  let size = 0;
  let count = 0;
  let sentenceLeft = 0;
  let paragraphLeft = 4 + Math.floor(random() * 8);
  while (size < bytes) {
    let word = words[rank()]!;
    if (sentenceLeft === 0) {
      sentenceLeft = 4 + Math.floor(random() * 16);
      word = word[0]!.toUpperCase() + word.slice(1);
    }
    sentenceLeft--;
    count++;
    if (sentenceLeft === 0) word += '.';
    else if (random() < 0.08) word += ',';
    if (line.length + 1 + word.length > LINE_WIDTH && line.length > 0) {
      lines.push(line);
      size += line.length + 1;
      // A paragraph ends with a line that ends a sentence.
      if (--paragraphLeft <= 0 && line.endsWith('.')) {
        lines.push('');
        size++;
        paragraphLeft = 4 + Math.floor(random() * 8);
      }
      line = '';
    }
    line = line.length > 0 ? `${line} ${word}` : word;
  }
  if (line.length > 0) lines.push(line);
  return { text: lines.join('\n') + '\n', words: count };
}

function readManifest(dir: string): Manifest | undefined {
  try {
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Manifest;
    const complete = manifest.files.every((file) => statSync(join(dir, file.name), { throwIfNoEntry: false })?.size === file.bytes);
    return complete ? manifest : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The corpus for these options: the cached files if they are complete, else generated now
 * (80 MB took ~5 s here). Several processes may call it at once: each writes its own
 * staging directory and renames it into place; the first rename wins and the others use it.
 */
export function ensureCorpus(options: CorpusOptions): Corpus {
  const started = performance.now();
  const seed = options.seed ?? 1;
  const fileCount = options.files ?? Math.max(8, Math.ceil(options.mb / 2));
  if (!(options.mb > 0) || !Number.isInteger(fileCount) || fileCount < 1) throw new RangeError(`bad corpus size: ${options.mb} MB in ${fileCount} files`);
  const hash = createHash('sha256').update(JSON.stringify({ v: GENERATOR_VERSION, seed, mb: options.mb, files: fileCount })).digest('hex').slice(0, 12);
  const dir = join(options.root ?? tmpdir(), `zerocos-wordcount-${hash}`);
  const done = (manifest: Manifest, generated: boolean): Corpus => ({
    dir,
    files: manifest.files.map((file) => join(dir, file.name)),
    bytes: manifest.bytes,
    words: manifest.words,
    generated,
    ms: performance.now() - started,
  });

  const cached = readManifest(dir);
  if (cached) return done(cached, false);

  options.onGenerate?.(dir);
  const staging = `${dir}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  mkdirSync(staging, { recursive: true });
  try {
    const random = seededRandom(seed);
    const words = vocabulary(VOCABULARY_SIZE, random);
    const rank = zipfSampler(words.length, ZIPF_EXPONENT, random);
    const perFile = Math.ceil((options.mb * 1e6) / fileCount);
    const manifest: Manifest = { files: [], bytes: 0, words: 0 };
    for (let i = 0; i < fileCount; i++) {
      const name = `part-${String(i).padStart(4, '0')}.txt`;
      const { text, words: count } = generateText(perFile, words, rank, random);
      writeFileSync(join(staging, name), text);
      const bytes = Buffer.byteLength(text);
      manifest.files.push({ name, bytes });
      manifest.bytes += bytes;
      manifest.words += count;
    }
    writeFileSync(join(staging, 'manifest.json'), JSON.stringify(manifest));
    // A stale, incomplete cache (an interrupted run of an older version) is replaced.
    if (existsSync(dir) && !readManifest(dir)) rmSync(dir, { recursive: true, force: true });
    try {
      renameSync(staging, dir);
      return done(manifest, true);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      const theirs = code === 'ENOTEMPTY' || code === 'EEXIST' ? readManifest(dir) : undefined;
      if (!theirs) throw error;
      return done(theirs, false); // another process finished first: the same files
    }
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

/**
 * The map function of the word count: lowercase words of letters only. Shipped to the workers
 * as source, so it is self-contained; the single-process count runs the same function.
 */
export const mapWords = (line: string, emit: (word: string, count: number) => void): void => {
  for (const word of line.toLowerCase().split(/[^a-z]+/)) if (word) emit(word, 1);
};

/** The combiner and the reducer: counts add up. */
export const sumCounts = (_word: string, counts: number[]): number => {
  let total = 0;
  for (const n of counts) total += n;
  return total;
};

/** The fold of the counts of one word (map-side and as shares merge): pairwise, so nothing is allocated per word. */
export const addCounts = (a: number, b: number): number => a + b;

/** Counts the words of the files in this process alone, line by line with {@link mapWords}: the reference result. */
export function countWords(files: string[]): Map<string, number> {
  const counts = new Map<string, number>();
  const emit = (word: string, n: number) => counts.set(word, (counts.get(word) ?? 0) + n);
  for (const path of files) for (const line of readFileSync(path, 'utf8').split('\n')) mapWords(line, emit);
  return counts;
}

/** Where two counts differ (the first `limit` words that do), or [] when they are equal. */
export function differences(actual: Map<string, number>, expected: Map<string, number>, limit = 5): string[] {
  const out: string[] = [];
  for (const [word, n] of expected) if (actual.get(word) !== n) out.push(`${word}: ${actual.get(word) ?? 'missing'}, expected ${n}`);
  for (const [word, n] of actual) if (!expected.has(word)) out.push(`${word}: ${n}, not in the text`);
  return out.slice(0, limit);
}
