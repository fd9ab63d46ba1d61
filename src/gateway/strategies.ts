/**
 * Balancing strategies: given the candidates of one tier (already filtered by
 * health, capability, priority and region; see health.ts), pick one. Pure and
 * synchronous: no I/O, no clock; randomness is injected so tests are exact.
 *
 * - round-robin: the seed's strategy. One counter per Strategy object, i.e.
 *   per Courier node, never in the store. The seed kept its index in shared
 *   storage, which costs a store round trip on every delivery and serialises
 *   all nodes on one key. A per-node counter is fair on its own node, so the
 *   sum over nodes is fair too; the counter starts at a random offset so that
 *   N nodes started together do not all send their first message to
 *   instance 0.
 * - weighted-round-robin: NGINX's smooth weighted round robin. Each pick adds
 *   every candidate's weight to its running score, takes the highest score
 *   (the earlier candidate on a tie) and subtracts the total weight from the
 *   winner. Over sum(weights) picks every candidate is picked exactly its
 *   weight's times, and the picks are interleaved: 3:1 goes A A B A, never
 *   A A A B, so a light instance is not starved and then flooded.
 * - least-in-flight: power of two choices, as Envoy's least-request balancer
 *   (choice count 2, active request bias 1). Two distinct candidates drawn at
 *   random; the lower `(inFlight + 1) / weight` wins, the first drawn on a tie.
 *   Two random draws instead of a full scan avoid the herd effect where every
 *   node sends to the same least-loaded instance at once, and in-flight counts
 *   are per node, which P2C tolerates because it only compares two.
 *
 * HAZARD: round-robin and weighted-round-robin keep state keyed by position
 * or id within the candidate list. Feed one Strategy object a stable set of
 * candidates: keep one per (group, capability, tier, region) selection, not
 * one per group. Alternating two different candidate sets through one
 * round-robin counter can send every request of a set to the same instance,
 * and weighted-round-robin drops the scores of ids missing from a pick, so
 * alternating sets keeps restarting its cycle.
 */
import type { StrategyName } from '../core/instance.js';

export interface Candidate {
  id: string;
  /** Effective weight, > 0: the registered weight already scaled by slow start. */
  weight: number;
  /** Attempts to this instance from this node that have not finished yet. */
  inFlight: number;
}

export interface Strategy {
  /** Undefined only when `candidates` is empty. */
  pick(candidates: readonly Candidate[]): Candidate | undefined;
}

export function createStrategy(name: StrategyName, random: () => number = Math.random): Strategy {
  switch (name) {
    case 'round-robin':
      return createRoundRobin(random);
    case 'weighted-round-robin':
      return createSmoothWeightedRoundRobin();
    case 'least-in-flight':
      return createPowerOfTwoChoices(random);
  }
}

/** The random start is drawn below this, so the counter stays a small exact integer. */
const START_OFFSET_RANGE = 1 << 30;

function createRoundRobin(random: () => number): Strategy {
  // A plain number counts 2^53 picks exactly: centuries at a million picks a second.
  let counter = Math.floor(random() * START_OFFSET_RANGE);
  return {
    pick(candidates) {
      if (candidates.length === 0) return undefined;
      const chosen = candidates[counter % candidates.length];
      counter += 1;
      return chosen;
    },
  };
}

function createSmoothWeightedRoundRobin(): Strategy {
  const scores = new Map<string, number>();
  return {
    pick(candidates) {
      if (candidates.length === 0) return undefined;
      let total = 0;
      let best: Candidate | undefined;
      let bestScore = -Infinity;
      for (const candidate of candidates) {
        const score = (scores.get(candidate.id) ?? 0) + candidate.weight;
        scores.set(candidate.id, score);
        total += candidate.weight;
        if (score > bestScore) {
          best = candidate;
          bestScore = score;
        }
      }
      // Every candidate now has an entry, so more entries than candidates means some
      // id left the set: sweep only then, keeping the usual pick a single pass.
      if (scores.size > candidates.length) {
        const present = new Set(candidates.map((candidate) => candidate.id));
        for (const id of scores.keys()) if (!present.has(id)) scores.delete(id);
      }
      if (best) scores.set(best.id, bestScore - total);
      return best;
    },
  };
}

function createPowerOfTwoChoices(random: () => number): Strategy {
  // min() guards an injected random() that returns exactly 1.
  const index = (below: number) => Math.min(below - 1, Math.floor(random() * below));
  const load = (candidate: Candidate) => (candidate.inFlight + 1) / candidate.weight;
  return {
    pick(candidates) {
      if (candidates.length <= 1) return candidates[0];
      const first = index(candidates.length);
      // Draw from the other n - 1 positions, so the two are always distinct.
      let second = index(candidates.length - 1);
      if (second >= first) second += 1;
      const a = candidates[first];
      const b = candidates[second];
      if (!a || !b) return a ?? b;
      return load(b) < load(a) ? b : a;
    },
  };
}
