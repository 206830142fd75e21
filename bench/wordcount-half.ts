/**
 * A plain Node process counting some of the word-count corpus's files (no zerocos), for the
 * parallel ceiling of bench/wordcount.ts: forked with IPC, it warms up on a few files, says
 * 'ready', and on each 'go' counts its files and answers with the words counted.
 */
import { countWords } from '../examples/wordcount/corpus.js';

const files = process.argv.slice(2);
countWords(files.slice(0, 2));
process.on('message', (message) => {
  if (message !== 'go') return process.exit(0);
  const counts = countWords(files);
  let words = 0;
  for (const n of counts.values()) words += n;
  process.send!({ words });
});
process.send!('ready');
