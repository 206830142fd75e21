/**
 * The collective algorithms, each over a {@link Round}: one collective call on every rank, with
 * its own tag, whose messages are told apart by a step number. Every algorithm takes O(log N)
 * rounds of messages instead of N sequential sends from a root (N = group size; "vr" is a rank
 * renumbered so that the root is 0):
 *
 * - bcast:     binomial tree. vr receives once from vr minus its lowest set bit, then sends to
 *              vr + 2^k for each 2^k below that bit: ceil(log2 N) rounds, N - 1 messages.
 * - reduce:    the same tree upside down: each vr combines what its children send, then sends
 *              to its parent; the root holds the result after ceil(log2 N) rounds.
 * - allreduce: recursive doubling (as MPICH). With p the largest power of two <= N and
 *              r = N - p, ranks 2i and 2i+1 (i < r) first fold into one; the p survivors
 *              exchange with the partner differing in one bit per round (log2 p rounds, every
 *              rank busy every round); the folded ranks get the result back: log2 p + 2 rounds
 *              at most, so 2 ranks cost one exchange.
 * - gather:    binomial tree; each vr forwards what its subtree gathered.
 * - scatter:   binomial tree from the root; each vr passes on the slices of its subtrees.
 * - allgather: Bruck's algorithm: in round k rank i sends what it has (up to 2^k values) to
 *              i - 2^k and takes as many from i + 2^k: ceil(log2 N) rounds, any N.
 * - scan:      recursive doubling on prefixes (as MPICH): log2 N rounds.
 * - barrier:   dissemination: in round k rank i signals i + 2^k and waits for i - 2^k:
 *              ceil(log2 N) rounds, no root to wait on.
 */
import { InvalidArgumentError } from '../common/errors.js';

/** One collective call as its algorithm sees it. */
export interface Round {
  readonly rank: number;
  readonly size: number;
  /** Sends `parts` to `dest` as step `step` of this collective (never blocks). */
  post(dest: number, step: number, parts: unknown[]): void;
  /** The parts `source` sent as step `step` of this collective. @throws RankFailedError */
  take(source: number, step: number): Promise<unknown[]>;
}

type Combine = (a: unknown, b: unknown) => unknown;

/** The step of allreduce's last message, back to a folded rank (above any doubling round). */
const FINAL_STEP = 64;

export async function bcast(round: Round, value: unknown, root: number): Promise<unknown> {
  const { size } = round;
  const vr = (round.rank - root + size) % size;
  const real = (v: number) => (v + root) % size;
  let mask = 1;
  for (; mask < size; mask <<= 1) {
    if (vr & mask) {
      [value] = await round.take(real(vr - mask), 0);
      break;
    }
  }
  for (mask >>= 1; mask > 0; mask >>= 1) if (vr + mask < size) round.post(real(vr + mask), 0, [value]);
  return value;
}

export async function reduce(round: Round, value: unknown, combine: Combine, root: number): Promise<unknown> {
  const { size } = round;
  const vr = (round.rank - root + size) % size;
  const real = (v: number) => (v + root) % size;
  let acc = value;
  for (let mask = 1; mask < size; mask <<= 1) {
    if (vr & mask) {
      round.post(real(vr - mask), 0, [acc]);
      return undefined;
    }
    if (vr + mask < size) acc = combine(acc, (await round.take(real(vr + mask), 0))[0]);
  }
  return acc;
}

export async function allreduce(round: Round, value: unknown, combine: Combine): Promise<unknown> {
  const { rank, size } = round;
  let pof2 = 1;
  while (pof2 * 2 <= size) pof2 *= 2;
  const rem = size - pof2;
  let acc = value;
  let newRank: number;
  if (rank < 2 * rem) {
    if (rank % 2 === 0) {
      round.post(rank + 1, 0, [acc]);
      newRank = -1;
    } else {
      acc = combine((await round.take(rank - 1, 0))[0], acc);
      newRank = rank >> 1;
    }
  } else {
    newRank = rank - rem;
  }
  if (newRank >= 0) {
    for (let mask = 1, step = 1; mask < pof2; mask <<= 1, step++) {
      const partnerNew = newRank ^ mask;
      const partner = partnerNew < rem ? partnerNew * 2 + 1 : partnerNew + rem;
      round.post(partner, step, [acc]);
      const [theirs] = await round.take(partner, step);
      // Lower ranks on the left, so every rank combines in the same order.
      acc = partnerNew < newRank ? combine(theirs, acc) : combine(acc, theirs);
    }
  }
  if (rank < 2 * rem) {
    if (rank % 2 === 1) round.post(rank - 1, FINAL_STEP, [acc]);
    else [acc] = await round.take(rank + 1, FINAL_STEP);
  }
  return acc;
}

export async function gather(round: Round, value: unknown, root: number): Promise<unknown[] | undefined> {
  const { size } = round;
  const vr = (round.rank - root + size) % size;
  const real = (v: number) => (v + root) % size;
  const ranks = [round.rank];
  const values = [value];
  for (let mask = 1; mask < size; mask <<= 1) {
    if (vr & mask) {
      // The ranks inline, the values as parts of their own (typed arrays go as binary frames).
      round.post(real(vr - mask), 0, [ranks, ...values]);
      return undefined;
    }
    if (vr + mask < size) {
      const [theirRanks, ...theirValues] = await round.take(real(vr + mask), 0);
      ranks.push(...(theirRanks as number[]));
      values.push(...theirValues);
    }
  }
  const out = new Array<unknown>(size);
  ranks.forEach((r, i) => (out[r] = values[i]));
  return out;
}

export async function scatter(round: Round, values: unknown, root: number): Promise<unknown> {
  const { rank, size } = round;
  const vr = (rank - root + size) % size;
  const real = (v: number) => (v + root) % size;
  // chunk[i] is the value for vr + i (this rank's subtree); a bad `values` at the root travels
  // down the tree as a marker, so every rank fails instead of waiting for its slice.
  let chunk: unknown[];
  let failure: string | undefined;
  let mask = 1;
  if (vr === 0) {
    if (Array.isArray(values) && values.length === size) chunk = Array.from({ length: size }, (_, i) => values[real(i)]);
    else {
      failure = `scatter needs an array of ${size} values at the root (rank ${root}), got ${Array.isArray(values) ? `${values.length}` : typeof values}`;
      chunk = [];
    }
    while (mask < size) mask <<= 1;
  } else {
    for (; !(vr & mask); mask <<= 1);
    const [error, ...received] = await round.take(real(vr - mask), 0);
    failure = typeof error === 'string' ? error : undefined;
    chunk = received;
  }
  for (mask >>= 1; mask > 0; mask >>= 1) {
    if (vr + mask >= size) continue;
    if (failure !== undefined) round.post(real(vr + mask), 0, [failure]);
    else round.post(real(vr + mask), 0, [null, ...chunk.slice(mask, mask + Math.min(mask, size - vr - mask))]);
  }
  if (failure !== undefined) throw new InvalidArgumentError(failure);
  return chunk[0];
}

export async function allgather(round: Round, value: unknown): Promise<unknown[]> {
  const { rank, size } = round;
  // have[i] is the value of rank (rank + i) mod N.
  const have = [value];
  for (let step = 0; have.length < size; step++) {
    const d = have.length;
    round.post((rank - d + size) % size, step, have.slice(0, Math.min(d, size - d)));
    have.push(...(await round.take((rank + d) % size, step)));
  }
  return Array.from({ length: size }, (_, r) => have[(r - rank + size) % size]);
}

export async function scan(round: Round, value: unknown, combine: Combine): Promise<unknown> {
  const { rank, size } = round;
  let partial = value;
  let result = value;
  for (let mask = 1, step = 0; mask < size; mask <<= 1, step++) {
    const partner = rank ^ mask;
    if (partner >= size) continue;
    round.post(partner, step, [partial]);
    const [theirs] = await round.take(partner, step);
    if (partner < rank) {
      partial = combine(theirs, partial);
      result = combine(theirs, result);
    } else {
      partial = combine(partial, theirs);
    }
  }
  return result;
}

export async function barrier(round: Round): Promise<void> {
  const { rank, size } = round;
  for (let d = 1, step = 0; d < size; d <<= 1, step++) {
    round.post((rank + d) % size, step, []);
    await round.take((rank - d + size) % size, step);
  }
}
