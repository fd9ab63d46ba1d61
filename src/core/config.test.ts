import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig, parseStoreLocation } from './config.js';

describe('COURIER_STORE', () => {
  it('defaults to the embedded SQLite file in the data dir', () => {
    assert.deepEqual(parseStoreLocation(undefined, '/data', 'normal'), { kind: 'sqlite', path: '/data/courier.db', synchronous: 'normal' });
    assert.deepEqual(parseStoreLocation('sqlite:/tmp/x.db', '/data', 'full'), { kind: 'sqlite', path: '/tmp/x.db', synchronous: 'full' });
  });

  it('takes Courier’s schema and prefix parameters off the URL and leaves the driver’s', () => {
    assert.deepEqual(parseStoreLocation('postgres://u@db:5432/app?schema=courier_a&sslmode=require', '/d', 'normal'), {
      kind: 'postgres',
      url: 'postgres://u@db:5432/app?sslmode=require',
      schema: 'courier_a',
    });
    assert.deepEqual(parseStoreLocation('redis://cache:6379/2', '/d', 'normal'), { kind: 'redis', url: 'redis://cache:6379/2', prefix: 'courier' });
    assert.deepEqual(parseStoreLocation('rediss://cache:6380?prefix=eu.1', '/d', 'normal'), { kind: 'redis', url: 'rediss://cache:6380', prefix: 'eu.1' });
  });

  it('rejects unknown schemes and unsafe schema or prefix names, naming COURIER_STORE', () => {
    for (const value of ['mysql://db/x', 'not a url', 'postgres://db/x?schema=Drop;Table', 'redis://c?prefix=a b']) {
      assert.throws(() => parseStoreLocation(value, '/d', 'normal'), /COURIER_STORE/, value);
    }
  });
});

describe('COURIER_BODY_TIMEOUT', () => {
  it('defaults to 30 s and reads durations like the other settings', () => {
    assert.equal(loadConfig({}).http.bodyTimeoutMs, 30_000);
    assert.equal(loadConfig({ COURIER_BODY_TIMEOUT: '0.3s' }).http.bodyTimeoutMs, 300);
    assert.equal(loadConfig({ COURIER_BODY_TIMEOUT: '2m' }).http.bodyTimeoutMs, 120_000);
  });

  it('rejects zero and junk, naming the setting', () => {
    for (const value of ['0', '10 parsecs']) assert.throws(() => loadConfig({ COURIER_BODY_TIMEOUT: value }), /COURIER_BODY_TIMEOUT/, value);
  });
});
