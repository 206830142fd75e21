// A module function: shipped to the workers by sha256 and imported there from the module cache.
import * as zerocos from 'zerocos';
import { shout } from 'mylib';

export function tag(text: string): string {
  // put() only works in the worker's own zerocos instance: the one its runtime was set in.
  const ref = zerocos.put(text);
  return `${shout(text)} ${ref instanceof zerocos.ObjectRef ? 'same-zerocos' : 'other-zerocos'}`;
}
