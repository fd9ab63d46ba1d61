/**
 * The route table as a case suite: what matches what, in which order, and
 * what the host answers when nothing or only another method matches. The
 * table is matched on the raw path, so publish destinations keep their bytes.
 *
 * Documented behaviour (these tests are its definition):
 * - First match wins, in the order of api/app.ts createRoutes.
 * - Fixed routes accept one trailing slash (`/v2/queues/`), not two.
 * - A path some route takes with other methods is a 405 with `Allow`.
 * - HEAD is answered by any GET route, like GET without the body.
 */
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { createRoutes } from './app.js';
import { createHost, type Host } from './host.js';
import { json, matchRoute, type Route } from './http.js';
import type { ApiServices } from './services.js';

/** The real table; matching never calls a service, so a stub that throws when touched is enough. */
const stub: ApiServices = new Proxy({} as ApiServices, {
  get: (_target, property) => (property === 'then' ? undefined : new Proxy(() => {}, { get: () => () => assert.fail(`service ${String(property)} touched`) })),
});
const table = createRoutes(stub);
const routeOf = (method: string, path: string) => matchRoute(table, method, path);
const matches = (method: string, path: string) => {
  const found = routeOf(method, path);
  return found !== undefined && 'route' in found;
};

describe('router: the Courier route table', () => {
  it('first match wins: /v2/queues/{name}/pause is the pause route, not a queue named "pause"', () => {
    const pause = routeOf('POST', '/v2/queues/orders/pause');
    assert.ok(pause && 'route' in pause);
    assert.equal(pause.params.name, 'orders');
    assert.equal(pause.params.action, 'pause');
    const get = routeOf('GET', '/v2/queues/orders');
    assert.ok(get && 'route' in get);
    assert.equal(get.params.name, 'orders');
  });

  it('accepts one trailing slash on fixed routes, not two', () => {
    assert.ok(matches('GET', '/v2/queues/'));
    assert.ok(matches('GET', '/v2/keys/'));
    assert.equal(routeOf('GET', '/v2/keys//'), undefined);
  });

  it('an unknown path matches nothing; a known path with another method lists the allowed ones', () => {
    assert.equal(routeOf('GET', '/v2/nothing-here'), undefined);
    const found = matchRoute(table, 'DELETE', '/v2/keys');
    assert.ok(found && 'methodNotAllowed' in found);
    assert.deepEqual(found.methodNotAllowed.sort(), ['GET', 'HEAD']);
  });

  it('HEAD is taken by GET routes', () => {
    const found = routeOf('HEAD', '/v2/queues');
    assert.ok(found && 'route' in found && found.route.methods.includes('GET'));
  });

  it('publish destinations with //, %2F and a query match the publish route', () => {
    for (const path of ['/v2/publish/https://example.com//a%2Fb', '/v2/publish/my-group', '/v2/enqueue/q/https://example.com/x']) {
      assert.ok(matches('POST', path), path);
    }
  });
});

describe('router: over real HTTP', () => {
  let host: Host;
  let port: number;
  const seen: { target: string; method: string }[] = [];
  const echo: Route['handler'] = async (ctx) => {
    seen.push({ target: ctx.target, method: ctx.method });
    return json(200, { target: ctx.target, path: ctx.path, params: ctx.params });
  };
  const routes: Route[] = [
    { methods: ['GET'], pattern: /^\/items\/special\/?$/, auth: false, handler: async () => json(200, { special: true }) },
    { methods: ['GET', 'DELETE'], pattern: /^\/items\/(?<id>[^/]+)\/?$/, auth: false, handler: echo },
    { methods: ['POST'], pattern: /^\/items\/(?<id>[^/]+)\/?$/, auth: true, handler: echo },
    { methods: ['POST'], pattern: /^\/v2\/publish\/./, auth: true, handler: echo },
  ];
  before(async () => {
    host = createHost({ routes, token: 'secret', tokenName: 'TOKEN', logger: pino({ level: 'silent' }), now: () => Date.now() });
    port = await host.listen(0, '127.0.0.1');
  });
  after(() => host.close());

  /** Sends the target byte for byte (fetch would normalise it). */
  function send(method: string, target: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
    return new Promise((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port, method, path: target, headers }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
      });
      req.on('error', reject);
      req.end();
    });
  }

  it('first match wins', async () => {
    assert.deepEqual(JSON.parse((await send('GET', '/items/special')).body), { special: true });
    assert.equal(JSON.parse((await send('GET', '/items/other')).body).params.id, 'other');
  });

  it('no route: 404 ROUTE_NOT_FOUND', async () => {
    const res = await send('GET', '/nowhere');
    assert.equal(res.status, 404);
    assert.deepEqual(JSON.parse(res.body), { error: 'no route for GET /nowhere', code: 'ROUTE_NOT_FOUND' });
  });

  it('405 METHOD_NOT_ALLOWED with Allow listing every method of the matching routes', async () => {
    const res = await send('PUT', '/items/1');
    assert.equal(res.status, 405);
    assert.equal(JSON.parse(res.body).code, 'METHOD_NOT_ALLOWED');
    assert.deepEqual(String(res.headers.allow).split(', ').sort(), ['DELETE', 'GET', 'HEAD', 'POST']);
  });

  it('HEAD on a GET route answers like GET, without a body', async () => {
    const res = await send('HEAD', '/items/1');
    assert.equal(res.status, 200);
    assert.equal(res.body, '');
    assert.ok(Number(res.headers['content-length']) > 0, 'the length GET would send');
  });

  it('a route needing the token is a 401 UNAUTHORIZED without it, before the handler runs', async () => {
    seen.length = 0;
    const res = await send('POST', '/items/1');
    assert.equal(res.status, 401);
    assert.equal(JSON.parse(res.body).code, 'UNAUTHORIZED');
    assert.equal(seen.length, 0);
  });

  it('publish targets reach the handler byte for byte: //, %2F, %20 and the query', async () => {
    const target = '/v2/publish/https://example.com//a%2Fb/c%20d?x=1&y=%2F&z=a+b';
    const res = await send('POST', target, { authorization: 'Bearer secret' });
    assert.equal(res.status, 200);
    assert.equal(JSON.parse(res.body).target, target);
  });
});
