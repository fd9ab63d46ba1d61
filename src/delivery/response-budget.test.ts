import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createResponseBudget } from './response-budget.js';

describe('response budget', () => {
  it('grants what is asked while there is room, then the rest of the room, then nothing', () => {
    const budget = createResponseBudget(100);
    assert.equal(budget.take(60), 60);
    assert.equal(budget.take(60), 40);
    assert.equal(budget.take(1), 0);
    assert.equal(budget.held, 100);
  });

  it('makes bytes given back available again, and never goes below empty', () => {
    const budget = createResponseBudget(10);
    budget.take(10);
    budget.give(4);
    assert.equal(budget.take(10), 4);
    budget.give(1_000);
    assert.equal(budget.held, 0);
  });

  it('keeps nothing with a zero budget, everything with an unbounded one', () => {
    assert.equal(createResponseBudget(0).take(5), 0);
    assert.equal(createResponseBudget(Number.POSITIVE_INFINITY).take(5), 5);
  });
});
