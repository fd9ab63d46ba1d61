import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CourierError } from '../core/errors.js';
import { jsonDepth, MAX_JSON_DEPTH, parseJsonBody } from './json.js';

const depth = (text: string, limit?: number) => jsonDepth(Buffer.from(text), limit);

describe('jsonDepth', () => {
  it('counts arrays and objects, not scalars', () => {
    assert.equal(depth('1'), 0);
    assert.equal(depth('"x"'), 0);
    assert.equal(depth('[]'), 1);
    assert.equal(depth('{"a":[{"b":[]}],"c":{}}'), 4);
  });

  it('ignores brackets inside strings, escaped quotes included', () => {
    assert.equal(depth('["[[[{{{"]'), 1);
    assert.equal(depth('["\\"[[[", "\\\\", ["x"]]'), 2);
    assert.equal(depth(JSON.stringify({ 'k[': 'ü{[€' })), 1);
  });

  it('stops one past the limit', () => {
    assert.equal(depth('['.repeat(1000), 10), 11);
  });
});

describe('parseJsonBody', () => {
  it(`parses ${MAX_JSON_DEPTH} levels and refuses ${MAX_JSON_DEPTH + 1} as a 400 naming body`, () => {
    const nested = (n: number) => Buffer.from('['.repeat(n) + ']'.repeat(n));
    assert.ok(Array.isArray(parseJsonBody(nested(MAX_JSON_DEPTH))));
    assert.throws(() => parseJsonBody(nested(MAX_JSON_DEPTH + 1)), (error: unknown) => {
      assert.ok(error instanceof CourierError);
      assert.equal(error.code, 'INVALID_REQUEST');
      assert.equal(error.field, 'body');
      return true;
    });
  });

  it('refuses malformed JSON with the route’s message', () => {
    assert.throws(() => parseJsonBody(Buffer.from('{nope'), 'must be a JSON array'), /body: must be a JSON array/);
  });
});
