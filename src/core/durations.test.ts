import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseGoDuration, parseUpstashDuration } from './durations.js';

describe('parseUpstashDuration', () => {
  const accepted: Array<[string, number]> = [
    ['30', 30_000],
    ['0', 0],
    ['1.5', 1_500],
    ['10s', 10_000],
    ['1.5s', 1_500],
    ['50s', 50_000],
    ['5m', 300_000],
    ['2h', 7_200_000],
    ['7d', 604_800_000],
    ['1d10h30m', 86_400_000 + 36_000_000 + 1_800_000],
    ['2h5s', 7_205_000],
    ['1d1h1m1s', 90_061_000],
    ['0.0005s', 1], // rounded to whole ms
    ['1.1s', 1_100],
    ['  10s\n', 10_000],
  ];
  for (const [input, ms] of accepted) {
    it(`reads ${JSON.stringify(input)} as ${ms} ms`, () => {
      assert.equal(parseUpstashDuration(input), ms);
    });
  }

  const rejected = [
    '',
    '   ',
    '-1',
    '-5s',
    '+5s',
    '10ms',
    '10x',
    '5w',
    '10S',
    '1s1s',
    '5m1h',
    '30m10h',
    '1d 10h',
    'NaN',
    'Infinity',
    '1e3',
    '1e3s',
    '.5s',
    '1.s',
    's',
    '0x10',
    '1_000',
    '1'.padEnd(400, '0'),
  ];
  for (const input of rejected) {
    it(`rejects ${JSON.stringify(input.length > 20 ? `${input.slice(0, 20)}…` : input)}`, () => {
      assert.equal(parseUpstashDuration(input), undefined);
    });
  }
});

describe('parseGoDuration', () => {
  const accepted: Array<[string, number]> = [
    ['0', 0],
    ['0s', 0],
    ['300ms', 300],
    ['1.5h', 5_400_000],
    ['6m5s', 365_000],
    ['1h2m3s4ms', 3_723_004],
    ['2s1h', 3_602_000], // Go allows any order
    ['1s1s', 2_000], // and repeats
    ['1.1s', 1_100], // exact, not 1100.0000000000002 rounded up
    ['.5s', 500],
    ['1.s', 1_000],
    ['1ns', 1], // sub-ms rounds up so a tiny wait is never "now"
    ['1500us', 2],
    ['1000\u00b5s', 1], // micro sign
    ['1000\u03bcs', 1], // Greek mu
    ['999999ns', 1],
    ['1000000ns', 1],
    ['1000001ns', 2],
  ];
  for (const [input, ms] of accepted) {
    it(`reads ${JSON.stringify(input)} as ${ms} ms`, () => {
      assert.equal(parseGoDuration(input), ms);
    });
  }

  const rejected = [
    '',
    '1', // only "0" may omit the unit
    '-1s',
    '+1s',
    '-0',
    '.s',
    '.',
    '1d', // Go has no day unit
    '1S',
    '1sec',
    '1 s',
    ' 1s',
    '1s ',
    'Infinity',
    'NaN',
    '1e3s',
    '3000000h', // overflows Go's int64 nanoseconds
  ];
  for (const input of rejected) {
    it(`rejects ${JSON.stringify(input)}`, () => {
      assert.equal(parseGoDuration(input), undefined);
    });
  }

  it('accepts the largest duration Go can hold and rejects one nanosecond more', () => {
    assert.equal(parseGoDuration('9223372036854775807ns'), 9_223_372_036_855);
    assert.equal(parseGoDuration('9223372036854775808ns'), undefined);
  });
});
