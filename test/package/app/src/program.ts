// A program job: a child process of the worker, run from the module cache.
import { shout } from 'mylib';

console.log(shout(process.argv[2] ?? ''));
