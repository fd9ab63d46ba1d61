import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createStrategy, type Candidate, type Strategy } from './strategies.js';
import { STRATEGIES } from '../core/instance.js';

const candidate = (id: string, weight = 1, inFlight = 0): Candidate => ({ id, weight, inFlight });

function countPicks(strategy: Strategy, candidates: readonly Candidate[], picks: number): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i < picks; i += 1) {
    const chosen = strategy.pick(candidates);
    assert.ok(chosen);
    counts.set(chosen.id, (counts.get(chosen.id) ?? 0) + 1);
  }
  return counts;
}

/** A seeded generator (mulberry32), so random-driven tests are repeatable. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('every strategy', () => {
  for (const name of STRATEGIES) {
    it(`${name}: returns undefined for no candidates and the only one for one`, () => {
      const strategy = createStrategy(name, seededRandom(1));
      assert.equal(strategy.pick([]), undefined);
      const only = candidate('only', 2, 7);
      for (let i = 0; i < 5; i += 1) assert.equal(strategy.pick([only]), only);
    });
  }
});

describe('round-robin', () => {
  it('gives each of 4 candidates exactly a quarter of 4,000 picks', () => {
    const candidates = ['a', 'b', 'c', 'd'].map((id) => candidate(id));
    const counts = countPicks(createStrategy('round-robin', seededRandom(7)), candidates, 4000);
    assert.deepEqual([...counts.values()], [1000, 1000, 1000, 1000]);
  });

  it('ignores weights: 3:1 weights still split evenly', () => {
    const counts = countPicks(createStrategy('round-robin', seededRandom(3)), [candidate('a', 3), candidate('b', 1)], 4000);
    assert.equal(counts.get('a'), 2000);
    assert.equal(counts.get('b'), 2000);
  });

  it('cycles in list order from a random start, so nodes do not all begin on the first instance', () => {
    const candidates = ['a', 'b', 'c', 'd'].map((id) => candidate(id));
    const firstPicks = new Set<string>();
    for (let seed = 1; seed <= 40; seed += 1) {
      const strategy = createStrategy('round-robin', seededRandom(seed));
      const sequence = Array.from({ length: 8 }, () => strategy.pick(candidates)?.id);
      const start = candidates.findIndex((c) => c.id === sequence[0]);
      assert.deepEqual(sequence, Array.from({ length: 8 }, (_, i) => candidates[(start + i) % 4]?.id));
      firstPicks.add(sequence[0] ?? '');
    }
    assert.equal(firstPicks.size, 4);
  });

  it('moves the share of an instance that left to the others', () => {
    const strategy = createStrategy('round-robin', seededRandom(11));
    const counts = countPicks(strategy, [candidate('a'), candidate('c')], 1000);
    assert.deepEqual([counts.get('a'), counts.get('c')], [500, 500]);
  });
});

describe('weighted-round-robin', () => {
  it('matches 3:1 weights within ±1 over 4,000 picks', () => {
    const counts = countPicks(createStrategy('weighted-round-robin'), [candidate('a', 3), candidate('b', 1)], 4000);
    assert.ok(Math.abs((counts.get('a') ?? 0) - 3000) <= 1, `a: ${counts.get('a')}`);
    assert.ok(Math.abs((counts.get('b') ?? 0) - 1000) <= 1, `b: ${counts.get('b')}`);
  });

  it('matches uneven weights 5:3:2 exactly over whole cycles', () => {
    const candidates = [candidate('a', 5), candidate('b', 3), candidate('c', 2)];
    const counts = countPicks(createStrategy('weighted-round-robin'), candidates, 10 * 400);
    assert.deepEqual([counts.get('a'), counts.get('b'), counts.get('c')], [2000, 1200, 800]);
  });

  it('holds fractional slow-start weights to their shares', () => {
    const counts = countPicks(createStrategy('weighted-round-robin'), [candidate('a', 1), candidate('b', 0.25)], 5000);
    assert.ok(Math.abs((counts.get('a') ?? 0) - 4000) <= 1, `a: ${counts.get('a')}`);
    assert.ok(Math.abs((counts.get('b') ?? 0) - 1000) <= 1, `b: ${counts.get('b')}`);
  });

  it('interleaves: a 3:1 group goes A A B A, not A A A B', () => {
    const strategy = createStrategy('weighted-round-robin');
    const candidates = [candidate('A', 3), candidate('B', 1)];
    const sequence = Array.from({ length: 8 }, () => strategy.pick(candidates)?.id).join(' ');
    assert.equal(sequence, 'A A B A A A B A');
  });

  it('spreads light instances through the cycle: 5:1:1 goes a a b a c a a, as in NGINX', () => {
    const strategy = createStrategy('weighted-round-robin');
    const candidates = [candidate('a', 5), candidate('b', 1), candidate('c', 1)];
    const sequence = Array.from({ length: 21 }, () => strategy.pick(candidates)?.id).join('');
    // Naive WRR would send a a a a a b c; the smooth cycle repeats with no drift.
    assert.equal(sequence, 'aabacaa'.repeat(3));
  });

  it('forgets an instance that left, so it rejoins with a fresh score', () => {
    const strategy = createStrategy('weighted-round-robin');
    const a = candidate('a', 1);
    const b = candidate('b', 3);
    assert.equal(strategy.pick([a, b])?.id, 'b'); // scores a 1, b 3 - 4 = -1
    assert.equal(strategy.pick([a])?.id, 'a'); // a 2 - 1 = 1; b is gone and dropped
    // A kept score would make b -1 + 3 = 2, tying a's 2 and losing to the first; fresh, b has 3 and wins.
    assert.equal(strategy.pick([a, b])?.id, 'b');
  });
});

describe('least-in-flight (power of two choices)', () => {
  it('of two candidates, always picks the one with fewer in flight', () => {
    const strategy = createStrategy('least-in-flight', seededRandom(5));
    const idle = candidate('idle', 1, 0);
    const busy = candidate('busy', 1, 50);
    for (let i = 0; i < 1000; i += 1) assert.equal(strategy.pick([busy, idle]), idle);
  });

  it('weighs load by weight: 3 in flight on weight 4 beats 1 in flight on weight 1', () => {
    const strategy = createStrategy('least-in-flight', seededRandom(9));
    const big = candidate('big', 4, 3); // (3 + 1) / 4 = 1
    const small = candidate('small', 1, 1); // (1 + 1) / 1 = 2
    for (let i = 0; i < 200; i += 1) assert.equal(strategy.pick([small, big]), big);
  });

  it('never picks the most loaded of many, and favours the least loaded', () => {
    const candidates = [candidate('a', 1, 0), candidate('b', 1, 5), candidate('c', 1, 10), candidate('d', 1, 100)];
    const counts = countPicks(createStrategy('least-in-flight', seededRandom(21)), candidates, 6000);
    assert.equal(counts.get('d'), undefined);
    // 'a' wins every pair it is drawn in: 3 of the 6 pairs, so half of the picks.
    const a = counts.get('a') ?? 0;
    assert.ok(a > 2700 && a < 3300, `a: ${a}`);
    assert.ok((counts.get('b') ?? 0) > (counts.get('c') ?? 0));
  });

  it('breaks a tie in favour of the first drawn, and draws two distinct candidates', () => {
    const draws = [0.0, 0.0, 0.99, 0.99];
    let next = 0;
    const strategy = createStrategy('least-in-flight', () => draws[next++ % draws.length] ?? 0);
    const candidates = [candidate('a'), candidate('b'), candidate('c')];
    // Draws 0.0, 0.0: first = a, second would be a again, so it moves to b; tie → a.
    assert.equal(strategy.pick(candidates)?.id, 'a');
    // Draws 0.99, 0.99: first = c, second = position 1 of the other two (a, b) = b; tie → c.
    assert.equal(strategy.pick(candidates)?.id, 'c');
  });

  it('spreads equal load evenly across candidates', () => {
    const candidates = ['a', 'b', 'c', 'd'].map((id) => candidate(id));
    const counts = countPicks(createStrategy('least-in-flight', seededRandom(13)), candidates, 8000);
    for (const id of ['a', 'b', 'c', 'd']) {
      const share = counts.get(id) ?? 0;
      assert.ok(share > 1800 && share < 2200, `${id}: ${share}`);
    }
  });
});
