/** The DLQ endpoints (spec §6). */
import { invalid } from '../../core/errors.js';
import type { DeadLetterSelection } from '../../core/queries.js';
import type { RetryOverrides } from '../../messages/dead-letter-service.js';
import { checkText } from '../destination.js';
import { json, ok, pathParam, type RequestContext, type Route } from '../http.js';
import { parseJsonBody } from '../json.js';
import { parsePublishHeaders, type IncomingHeaders } from '../publish-headers.js';
import { count, cursor, deadLetterFilter, FILTER_QUERY_KEYS, rejectEmptyValues, rejectUnknownKeys, values } from '../query.js';
import { renderDeadLetter } from '../render.js';
import type { ApiServices } from '../services.js';

const MAX_DLQ_COUNT = 100;
/** host and path are not DLQ filters (the SDK's filter-types.ts says the DLQ rejects them). */
const BULK_KEYS = new Set([
  'dlqIds',
  'count',
  'cursor',
  'messageId',
  'responseStatus',
  'fromDate',
  'toDate',
  'qstash_token',
  ...FILTER_QUERY_KEYS.filter((key) => key !== 'host' && key !== 'path'),
]);

function selectionFrom(query: URLSearchParams): DeadLetterSelection {
  const ids = values(query, 'dlqIds');
  if (ids.length > 0) return { dlqIds: ids };
  const selection: DeadLetterSelection = { filter: deadLetterFilter(query), count: count(query, MAX_DLQ_COUNT, MAX_DLQ_COUNT) };
  const at = cursor(query);
  if (at !== undefined) selection.cursor = at;
  return selection;
}

/** Bulk mutations: unknown keys are refused, and the legacy body `{"dlqIds": [...]}` is read when the query names nothing. */
async function bulkSelection(ctx: RequestContext): Promise<DeadLetterSelection> {
  rejectUnknownKeys(ctx.query, BULK_KEYS);
  rejectEmptyValues(ctx.query);
  if ([...ctx.query.keys()].some((key) => key !== 'qstash_token')) return selectionFrom(ctx.query);
  const body = await ctx.body(1024 * 1024);
  if (body.byteLength === 0) return selectionFrom(ctx.query);
  const parsed = parseJsonBody(body, 'must be JSON, e.g. {"dlqIds": ["…"]}');
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw invalid('body', 'must be a JSON object, e.g. {"dlqIds": ["…"]}');
  const ids = (parsed as { dlqIds?: unknown }).dlqIds;
  if (!Array.isArray(ids) || ids.length === 0 || !ids.every((id) => typeof id === 'string')) {
    throw invalid('body.dlqIds', 'must be a non-empty array of DLQ ids');
  }
  return { dlqIds: ids.map((id, index) => checkText(id, `body.dlqIds[${index}]`)) };
}

/** Only the config headers the request actually carries override the original message's. */
function retryOverrides(ctx: RequestContext, services: ApiServices): RetryOverrides {
  const headers = ctx.req.headers as IncomingHeaders;
  const options = parsePublishHeaders(headers, services.limits, services.clock.now());
  const overrides: RetryOverrides = {};
  if (options.retries !== undefined) overrides.retries = options.retries;
  if (options.retryDelayExpression !== undefined) overrides.retryDelayExpression = options.retryDelayExpression;
  if (options.timeoutMs !== undefined) overrides.timeoutMs = options.timeoutMs;
  if (options.delayMs !== undefined) overrides.delayMs = options.delayMs;
  if (options.notBefore !== undefined) overrides.notBefore = options.notBefore;
  if (options.callback) overrides.callback = options.callback;
  if (options.failureCallback) overrides.failureCallback = options.failureCallback;
  return overrides;
}

export function deadLetterRoutes(services: ApiServices): Route[] {
  const { deadLetters } = services;
  // A NUL cannot be in any DLQ id, and PostgreSQL cannot look one up: a 400, like a bad percent-encoding.
  const id = (ctx: RequestContext) => checkText(pathParam(ctx, 'id'), 'dlqId');

  return [
    {
      methods: ['GET'],
      pattern: /^\/v2\/dlq\/?$/,
      auth: true,
      handler: async (ctx) => {
        const page = await deadLetters.list(selectionFrom(ctx.query));
        const messages = page.items.map(renderDeadLetter);
        return json(200, page.cursor === undefined ? { messages } : { messages, cursor: page.cursor });
      },
    },
    {
      methods: ['DELETE'],
      pattern: /^\/v2\/dlq\/?$/,
      auth: true,
      handler: async (ctx) => json(200, await deadLetters.deleteMany(await bulkSelection(ctx))),
    },
    {
      methods: ['POST'],
      pattern: /^\/v2\/dlq\/retry\/?$/,
      auth: true,
      handler: async (ctx) => {
        const overrides = retryOverrides(ctx, services);
        const { results, cursor: next } = await deadLetters.retry(await bulkSelection(ctx), overrides);
        const responses = results.map((result) => ({ messageId: result.messageId }));
        return json(201, next === undefined ? { responses } : { responses, cursor: next });
      },
    },
    {
      methods: ['POST'],
      pattern: /^\/v2\/dlq\/retry\/(?<id>[^/]+)\/?$/,
      auth: true,
      handler: async (ctx) => json(201, { messageId: (await deadLetters.retryOne(id(ctx), retryOverrides(ctx, services))).messageId }),
    },
    {
      methods: ['GET'],
      pattern: /^\/v2\/dlq\/(?<id>[^/]+)\/?$/,
      auth: true,
      handler: async (ctx) => json(200, renderDeadLetter(await deadLetters.get(id(ctx)))),
    },
    {
      methods: ['DELETE'],
      pattern: /^\/v2\/dlq\/(?<id>[^/]+)\/?$/,
      auth: true,
      handler: async (ctx) => {
        await deadLetters.deleteOne(id(ctx));
        return ok();
      },
    },
  ];
}
