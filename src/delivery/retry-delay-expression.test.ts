import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  MAX_EXPRESSION_DEPTH,
  MAX_EXPRESSION_LENGTH,
  RetryDelayExpressionError,
  compileRetryDelayExpression,
} from './retry-delay-expression.js';

const run = (source: string, retried = 0): number => compileRetryDelayExpression(source).evaluate(retried);

describe('compileRetryDelayExpression: the documented examples', () => {
  it('"1000" is a constant second', () => {
    assert.deepEqual([0, 1, 5].map((r) => run('1000', r)), [1000, 1000, 1000]);
  });

  it('"1000 * (1 + retried)" grows linearly', () => {
    assert.deepEqual([0, 1, 2, 3].map((r) => run('1000 * (1 + retried)', r)), [1000, 2000, 3000, 4000]);
  });

  it('"pow(2, retried) * 1000" doubles from one second', () => {
    assert.deepEqual([0, 1, 2, 3].map((r) => run('pow(2, retried) * 1000', r)), [1000, 2000, 4000, 8000]);
  });

  it('"max(1000, pow(2, retried) * 100)" has a one-second floor', () => {
    assert.deepEqual(
      [0, 3, 4, 5].map((r) => run('max(1000, pow(2, retried) * 100)', r)),
      [1000, 1000, 1600, 3200],
    );
  });

  it('keeps the source as given', () => {
    assert.equal(compileRetryDelayExpression(' 1000 ').source, ' 1000 ');
  });
});

describe('compileRetryDelayExpression: arithmetic', () => {
  const cases: Array<[string, number, number]> = [
    ['1 + 2 * 3', 0, 7],
    ['(1 + 2) * 3', 0, 9],
    ['10 - 4 - 3', 0, 3], // left-associative
    ['100 / 10 / 2', 0, 5],
    ['-5 + 10', 0, 5],
    ['--5', 0, 5],
    ['2 * -retried', 3, -6],
    ['-pow(2, 2)', 0, -4],
    ['1.5 * 1000', 0, 1500],
    ['retried', 7, 7],
    ['exp(0)', 0, 1],
    ['sqrt(16)', 0, 4],
    ['abs(-3)', 0, 3],
    ['floor(2.7)', 0, 2],
    ['ceil(2.1)', 0, 3],
    ['round(2.5)', 0, 3],
    ['round(-2.5)', 0, -3], // Go's half-away-from-zero, not JS's half-up
    ['min(3, retried)', 5, 3],
    ['max(3, retried)', 5, 5],
    ['\t1000\n*\r\n( 1+retried )', 1, 2000],
    ['pow(2,retried)*1000', 2, 4000],
  ];
  for (const [source, retried, expected] of cases) {
    it(`${JSON.stringify(source)} with retried=${retried} is ${expected}`, () => {
      assert.equal(run(source, retried), expected);
    });
  }

  it('returns NaN and Infinity as they are, for the caller to handle', () => {
    assert.ok(Number.isNaN(run('sqrt(-1)')));
    assert.ok(Number.isNaN(run('0 / 0')));
    assert.equal(run('1 / 0'), Infinity);
    assert.equal(run('pow(10, 400)'), Infinity);
  });

  it('accepts nesting up to the depth limit', () => {
    const deep = `${'('.repeat(MAX_EXPRESSION_DEPTH)}1${')'.repeat(MAX_EXPRESSION_DEPTH)}`;
    assert.equal(run(deep), 1);
  });

  it('accepts a source of exactly the length limit', () => {
    const source = `1${' '.repeat(MAX_EXPRESSION_LENGTH - 1)}`;
    assert.equal(run(source), 1);
  });
});

describe('compileRetryDelayExpression: malformed input', () => {
  const tooDeep = `${'('.repeat(MAX_EXPRESSION_DEPTH + 1)}1${')'.repeat(MAX_EXPRESSION_DEPTH + 1)}`;
  const tooDeepCalls = `${'abs('.repeat(MAX_EXPRESSION_DEPTH + 1)}1${')'.repeat(MAX_EXPRESSION_DEPTH + 1)}`;
  const tooDeepMinus = `${'-'.repeat(MAX_EXPRESSION_DEPTH + 1)}1`;
  const cases: Array<[string, string, RegExp]> = [
    ['empty', '', /^expression is empty$/],
    ['only whitespace', '  \t ', /^expression is empty$/],
    ['a dangling operator', '1 +', /^unexpected end of expression at position 3/],
    ['a leading binary operator', '* 2', /^unexpected "\*" at position 0/],
    ['two operators', '1 + * 2', /^unexpected "\*" at position 4/],
    ['an unclosed parenthesis', '(1', /^expected "\)" at position 2, found end of expression$/],
    ['an unclosed call', 'pow(2, retried', /^expected "\)" at position 14/],
    ['an extra closing parenthesis', '(1))', /^unexpected "\)" at position 3, expected an operator$/],
    ['empty parentheses', '()', /^unexpected "\)" at position 1/],
    ['an unknown variable', 'foo', /^unknown variable "foo" at position 0/],
    ['a misspelled variable', 'retries * 1000', /^unknown variable "retries" at position 0/],
    ['an unknown function', 'powr(2, 3)', /^unknown function "powr" at position 0$/],
    ['two operands side by side', 'retried retried', /^unexpected "retried" at position 8, expected an operator$/],
    ['implicit multiplication', '2(3)', /^unexpected "\(" at position 1/],
    ['too few arguments', 'pow(1)', /^pow at position 0 expects 2 arguments, got 1$/],
    ['too many arguments', 'sqrt(1, 2)', /^sqrt at position 0 expects 1 argument, got 2$/],
    ['no arguments', 'exp()', /^exp at position 0 expects 1 argument, got 0$/],
    ['a trailing comma', 'max(1,)', /^unexpected "\)" at position 6/],
    ['a comma outside a call', '1, 2', /^unexpected "," at position 1/],
    ['a call on the variable', 'retried(1)', /^unknown function "retried" at position 0/],
    ['a statement separator', '1000; process.exit()', /^unexpected character ";" at position 4$/],
    ['property access', 'Math.pow(2, 3)', /^unexpected character "\." at position 4$/],
    ['constructor', 'constructor', /^unknown variable "constructor" at position 0/],
    ['a call to constructor', 'constructor(1)', /^unknown function "constructor" at position 0/],
    ['__proto__', '__proto__', /^unknown variable "__proto__" at position 0/],
    ['toString', 'toString(1)', /^unknown function "toString" at position 0/],
    ['an exponent', '1e3', /^unexpected "e3" at position 1/],
    ['a leading dot', '.5', /^unexpected character "\." at position 0/],
    ['a trailing dot', '1.', /^unexpected character "\." at position 1/],
    ['a power operator', '2 ^ 3', /^unexpected character "\^" at position 2/],
    ['a JS power operator', '2 ** 3', /^unexpected "\*" at position 3/],
    ['unary plus', '+1', /^unexpected "\+" at position 0/],
    ['a string', '"1000"', /^unexpected character "\\"" at position 0/],
    ['a full-width digit', '１０００', /^unexpected character "１" at position 0/],
    ['an emoji', '1000 * 🚀', /^unexpected character "🚀" at position 7/],
    ['a non-ASCII letter', 'rétried', /^unexpected character "é" at position 1/],
    ['a non-breaking space', '1\u00a0+ 1', /^unexpected character "\u00a0" at position 1/],
    ['a zero-width space', '1\u200b', /^unexpected character "\u200b" at position 1/],
    ['a NUL byte', '1\u0000', /^unexpected character "\\u0000" at position 1/],
    ['too long', `1${' '.repeat(MAX_EXPRESSION_LENGTH)}`, /^expression is 513 characters long, the limit is 512$/],
    ['too deep (parentheses)', tooDeep, /^expression nests deeper than 32 levels at position 32$/],
    ['too deep (calls)', tooDeepCalls, /^expression nests deeper than 32 levels at position 128$/],
    ['too deep (unary minus)', tooDeepMinus, /^expression nests deeper than 32 levels at position 32$/],
  ];
  for (const [what, source, message] of cases) {
    it(`rejects ${what}`, () => {
      assert.throws(
        () => compileRetryDelayExpression(source),
        (error: unknown) => {
          assert.ok(error instanceof RetryDelayExpressionError);
          assert.equal(error.name, 'RetryDelayExpressionError');
          assert.match(error.message, message);
          return true;
        },
      );
    });
  }

  it('reports the offending offset as a field too', () => {
    assert.throws(
      () => compileRetryDelayExpression('1 + foo'),
      (error: unknown) => error instanceof RetryDelayExpressionError && error.position === 4,
    );
  });
});
