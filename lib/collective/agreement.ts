/**
 * How the survivors of a communicator agree on which members are gone, for `shrink` (ULFM's
 * MPI_Comm_shrink). Each survivor's ports report losses on their own schedule, and more members
 * may fail while the survivors agree, so they must not simply each take what they know: two
 * survivors that disagree would build communicators of different sizes and hang in their first
 * collective.
 *
 * The algorithm is flooding consensus with a perfect failure detector (Cachin, Guerraoui and
 * Rodrigues, "Introduction to Reliable and Secure Distributed Programming", 2nd ed., algorithm
 * 5.1). Each member proposes the set of members it knows are lost. In round r every member sends
 * every other member the union of the sets it has heard of, and waits until it has heard round r
 * from each member, or seen that member lost. When the members it heard from in round r are the
 * members it heard from in round r - 1 (nobody failed in between), it decides the union and
 * sends the decision to all; a member that gets a decision (delivered while its sender was not
 * yet seen lost: see watchDecisions) adopts it and passes it on. Every surviving member decides
 * the same set.
 *
 * The algorithm agrees on the sets proposed at its start: a member lost before `shrink` that no
 * survivor had seen lost yet, or one that fails during it, is missing from the decision. Every
 * survivor that decides by the round rule has waited for each member's first message or seen it
 * lost, though, so the survivors run it again among the members it left, until an instance after
 * the first decides that none is lost (every survivor runs the same sequence of instances, since
 * each instance's members follow from the previous decision). With losses seen before `shrink`
 * and none during it, that is 2 rounds of all-to-all messages, then 1 to confirm. A member that
 * fails during the last instance stays in the communicator: its next collective fails, and
 * another `shrink` leaves it out (as with ULFM).
 *
 * The failure detector is the ports' monitors: a process or worker that ends is seen at once,
 * a node within the cluster's heartbeat timeout. A member wrongly seen lost (a node that was only
 * slow) is left out by the others; it learns so from the decision.
 */
import { RankFailedError } from './collective-errors.js';

/** The tag of a decision; round r of proposals uses tag r (r >= 1). */
const DECIDED = 0;

/**
 * What the agreement needs from its communicator: messages among the members, by group rank,
 * kept apart per instance (a member may still be in one instance when another's messages come).
 */
export interface AgreementIo {
  /** This member, as a rank of the group. */
  readonly me: number;
  /** Every member of the communicator, as ranks of the group. */
  readonly members: readonly number[];
  /** True once the member has been seen lost. */
  isLost(rank: number): boolean;
  /** Sends a set of lost members (a proposal of round `tag`, or the decision). */
  send(instance: number, dest: number, tag: number, lost: number[]): void;
  /** `source`'s message with `tag`. @throws RankFailedError when `source` is lost and sent none */
  take(instance: number, source: number, tag: number): Promise<unknown>;
  /** The next message with `tag` from any member. */
  takeAny(instance: number, tag: number): Promise<{ source: number; value: unknown }>;
  /** The instance is over: its later messages, and receives still waiting, can go. */
  close(instance: number): void;
}

/**
 * The members the survivors agree are lost (see the module comment). When the set holds `me`,
 * the others went on without this member.
 */
export async function agreeOnLost(io: AgreementIo): Promise<Set<number>> {
  const lost = new Set<number>();
  let members = io.members;
  for (let instance = 0; ; instance++) {
    let decided: Set<number>;
    try {
      decided = await flood(io, instance, members);
    } finally {
      io.close(instance);
    }
    for (const rank of decided) lost.add(rank);
    if ((decided.size === 0 && instance > 0) || decided.has(io.me)) return lost;
    members = members.filter((rank) => !decided.has(rank));
  }
}

/** One instance of flooding consensus among `members`. */
async function flood(io: AgreementIo, instance: number, members: readonly number[]): Promise<Set<number>> {
  const { me } = io;
  const others = members.filter((rank) => rank !== me);
  const broadcast = (tag: number, lost: Set<number>) => {
    const value = [...lost].sort((a, b) => a - b);
    for (const rank of others) if (!io.isLost(rank)) io.send(instance, rank, tag, value);
  };
  const decided = watchDecisions(io, instance, members);
  let heardBefore = new Set(members);
  let known = new Set(members.filter((rank) => io.isLost(rank)));
  for (let round = 1; ; round++) {
    broadcast(round, known);
    const heard = Promise.all(
      others.map((rank) =>
        io.take(instance, rank, round).then(
          (value) => ({ rank, lost: lostSet(value, members) }),
          (error: unknown) => {
            if (error instanceof RankFailedError) return undefined;
            throw error;
          },
        ),
      ),
    );
    const outcome = await Promise.race([heard, decided]);
    if (outcome instanceof Set) {
      broadcast(DECIDED, outcome);
      return outcome;
    }
    const heardNow = new Set([me]);
    const next = new Set(known);
    for (const reply of outcome) {
      if (!reply) continue;
      heardNow.add(reply.rank);
      for (const rank of reply.lost) next.add(rank);
    }
    if (sameSet(heardNow, heardBefore)) {
      broadcast(DECIDED, next);
      return next;
    }
    heardBefore = heardNow;
    known = next;
  }
}

/**
 * The first decision any member sends. The textbook adopts a decision only from a member not yet
 * seen lost when it is delivered; here a port delivers everything a member sent before it
 * reports the loss, so every decision that arrives qualifies, even one taken from the queue after
 * the loss (a member that decided and then returned from `main` is still heard).
 */
async function watchDecisions(io: AgreementIo, instance: number, members: readonly number[]): Promise<Set<number>> {
  const { value } = await io.takeAny(instance, DECIDED);
  return lostSet(value, members);
}

/** The members in a received set; anything else in it is ignored. */
function lostSet(value: unknown, members: readonly number[]): Set<number> {
  return new Set(Array.isArray(value) ? value.filter((rank): rank is number => members.includes(rank as number)) : []);
}

function sameSet(a: Set<number>, b: Set<number>): boolean {
  return a.size === b.size && [...a].every((x) => b.has(x));
}
