/** Signing keys (spec §10), health probes, and the surfaces Courier does not support (spec §14, §18). */
import { CourierError } from '../../core/errors.js';
import { json, type Route } from '../http.js';
import type { ApiServices } from '../services.js';

function unsupported(what: string): () => Promise<never> {
  return async () => {
    throw new CourierError('NOT_SUPPORTED', `${what} is not supported by Courier`);
  };
}

export function systemRoutes(services: ApiServices): Route[] {
  const { keys, health } = services;
  const ALL = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'];
  return [
    { methods: ['GET'], pattern: /^\/v2\/keys\/?$/, auth: true, handler: async () => json(200, keys.signingKeys()) },
    { methods: ['POST'], pattern: /^\/v2\/keys\/rotate\/?$/, auth: true, handler: async () => json(200, await keys.rotate()) },

    // None of the probes counts anything: live answers from memory, ready pings the store once.
    // Load balancers want a plain, cheap answer; it says the process serves HTTP, nothing more.
    { methods: ['GET', 'HEAD'], pattern: /^\/health\/?$/, auth: false, handler: async () => ({ status: 200, text: 'OK' }) },
    { methods: ['GET', 'HEAD'], pattern: /^\/health\/live\/?$/, auth: false, handler: async () => json(200, { status: 'live' }) },
    {
      methods: ['GET', 'HEAD'],
      pattern: /^\/health\/ready\/?$/,
      auth: false,
      handler: async () => ((await health.ready()) ? json(200, { status: 'ready' }) : json(503, { status: 'unavailable', error: 'store unreachable' })),
    },
    {
      methods: ['GET'],
      pattern: /^\/health\/detailed\/?$/,
      // Figures only, no secrets, but they tell an outsider how busy this node is: the token unless
      // COURIER_HEALTH_DETAILED_PUBLIC=true. Cheap either way (a snapshot, health/health-service.ts).
      auth: !health.detailedPublic,
      handler: async () => {
        const report = await health.report();
        return json(report.status === 'ok' ? 200 : 503, report);
      },
    },

    { methods: ALL, pattern: /^\/v2\/workflows(\/|$)/, auth: true, handler: unsupported('/v2/workflows') },
    { methods: ALL, pattern: /^\/llm\/v1\//, auth: true, handler: unsupported('the LLM API') },
  ];
}
