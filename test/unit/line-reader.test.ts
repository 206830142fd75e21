import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { forEachLine } from '../../lib/mapreduce/line-reader.js';

const dir = mkdtempSync(join(tmpdir(), 'zerocos-lines-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let files = 0;
function fileOf(content: string | Buffer): string {
  const path = join(dir, `f${files++}`);
  writeFileSync(path, content);
  return path;
}

async function linesOf(path: string, readBytes?: number, pieceBytes?: number): Promise<string[]> {
  const lines: string[] = [];
  await forEachLine(path, (line) => lines.push(line), readBytes, pieceBytes);
  return lines;
}

/** Read and piece sizes that put boundaries everywhere: inside lines, inside UTF-8 sequences, at newlines. */
const SIZES: [number, number][] = [[1, 1], [3, 2], [7, 5], [16, 4], [64, 64], [1 << 20, 64 * 1024]];

/** Lines of random length (some empty, some far longer than a piece) of ASCII, `\r`, and 2-, 3- and 4-byte characters. */
function randomText(seed: number, lines: number): string {
  let state = seed;
  const next = () => (state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const alphabet = ['a', 'b', 'Z', ' ', '\r', 'é', 'ß', '€', '中', '😀'];
  const out: string[] = [];
  for (let i = 0; i < lines; i++) {
    const length = next() < 0.1 ? 0 : next() < 0.05 ? 200 + Math.floor(next() * 300) : Math.floor(next() * 40);
    let line = '';
    for (let j = 0; j < length; j++) line += alphabet[Math.floor(next() * alphabet.length)];
    out.push(line);
  }
  return out.join('\n') + (next() < 0.5 ? '\n' : '');
}

describe('forEachLine (how a files: true map task reads its files)', () => {
  it('gives exactly the items of the whole text split at newlines, whatever the read and piece sizes', async () => {
    const small = ['', 'a', 'a\n', '\n', '\n\n\n', 'one\r\ntwo\r\n', 'x\ny', '€'.repeat(30), `${'é€😀\n'.repeat(20)}zß`];
    // Random texts of ~10 KB: not a byte at a time (thousands of reads each), every other size.
    const cases = [...small.map((content) => ({ content, sizes: SIZES })), ...[1, 2, 3].map((seed) => ({ content: randomText(seed, 200), sizes: SIZES.slice(2) }))];
    for (const { content, sizes } of cases) {
      const path = fileOf(content);
      const expected = readFileSync(path, 'utf8').split('\n');
      for (const [readBytes, pieceBytes] of sizes) expect(await linesOf(path, readBytes, pieceBytes), `${JSON.stringify(content.slice(0, 20))} at ${readBytes}/${pieceBytes}`).toEqual(expected);
    }
  });

  it('decodes invalid UTF-8 as the whole text would be decoded (pieces end only at newline bytes)', async () => {
    const path = fileOf(Buffer.from([0x41, 0xe2, 0x82, 0x0a, 0xff, 0x42, 0x0a, 0xf0, 0x9f, 0x98, 0x0a, 0xc3]));
    const expected = readFileSync(path, 'utf8').split('\n');
    expect(expected).toEqual(['A\ufffd', '\ufffdB', '\ufffd', '\ufffd']);
    for (const [readBytes, pieceBytes] of SIZES) expect(await linesOf(path, readBytes, pieceBytes)).toEqual(expected);
  });

  it('reads a line far longer than its buffer whole', async () => {
    const long = 'w'.repeat(100_000);
    const path = fileOf(`short\n${long}\nend`);
    expect(await linesOf(path, 16, 8)).toEqual(['short', long, 'end']);
  });

  it('reads one file after another with the same results (its buffer is reused)', async () => {
    const first = fileOf(randomText(7, 2000));
    const second = fileOf('tail\nonly');
    expect(await linesOf(first)).toEqual(readFileSync(first, 'utf8').split('\n'));
    expect(await linesOf(second)).toEqual(['tail', 'only']);
  });

  it('rejects with the file system error for a missing file or a directory, and with what the callback throws', async () => {
    await expect(linesOf(join(dir, 'missing'))).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(linesOf(dir)).rejects.toMatchObject({ code: 'EISDIR' });
    const path = fileOf('a\nb\nc');
    const seen: string[] = [];
    const failing = forEachLine(path, (line) => {
      seen.push(line);
      if (line === 'b') throw new Error('map failed on b');
    });
    await expect(failing).rejects.toThrow('map failed on b');
    expect(seen).toEqual(['a', 'b']);
    expect(await linesOf(path)).toEqual(['a', 'b', 'c']);
  });
});
