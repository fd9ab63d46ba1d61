/** /v2/messages (spec §5) and the logs, /v2/events and /v2/logs (spec §9). */
import { invalid } from '../../core/errors.js';
import type { CancelSelection, EventQuery, MessageFilter } from '../../core/queries.js';
import { checkText } from '../destination.js';
import { json, pathParam, type RequestContext, type Route } from '../http.js';
import { parseJsonBody } from '../json.js';
import { count, cursor, FILTER_QUERY_KEYS, logState, messageFilter, rejectEmptyValues, rejectUnknownKeys, values } from '../query.js';
import { renderLogEvent, renderMessage } from '../render.js';
import type { ApiServices } from '../services.js';

const CANCEL_KEYS = new Set(['messageIds', 'count', 'fromDate', 'toDate', 'qstash_token', ...FILTER_QUERY_KEYS]);
const MAX_CANCEL_COUNT = 500;
const DEFAULT_LOG_COUNT = 100;
const MAX_LOG_COUNT = 1000;

/** The legacy JSON body of SDK ≤ 2.9 and the Python/Go SDKs: `{"messageIds": [...]}` or body filters. */
function legacyCancelBody(body: Buffer): CancelSelection {
  if (body.byteLength === 0) return { all: true };
  const parsed = parseJsonBody(body, 'must be JSON, e.g. {"messageIds": ["msg_…"]}');
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw invalid('body', 'must be a JSON object');
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(parsed)) {
    const list = Array.isArray(value) ? value : [value];
    // An empty list must not fall through to "cancel everything".
    if (list.length === 0) throw invalid(`body.${key}`, 'must not be an empty array');
    for (const item of list) {
      if (typeof item !== 'string' && typeof item !== 'number') throw invalid(`body.${key}`, 'must be a string, number or array of them');
      query.append(key, String(item));
    }
  }
  rejectUnknownKeys(query, CANCEL_KEYS);
  if (query.has('messageIds')) return { messageIds: values(query, 'messageIds') };
  const filter = messageFilter(query);
  return Object.keys(filter).length === 0 ? { all: true } : { filter };
}

function isEmpty(filter: MessageFilter): boolean {
  return Object.keys(filter).length === 0;
}

/** A NUL cannot be in any id Courier issues, and PostgreSQL cannot look one up: a 400, like a bad percent-encoding. */
const messageId = (ctx: RequestContext): string => checkText(pathParam(ctx, 'id'), 'messageId');

export function messageRoutes(services: ApiServices): Route[] {
  const { messages } = services;

  async function cancelMany(ctx: RequestContext) {
    const { query } = ctx;
    rejectUnknownKeys(query, CANCEL_KEYS);
    rejectEmptyValues(query);
    let selection: CancelSelection;
    if (query.has('messageIds')) {
      const ids = values(query, 'messageIds');
      if (ids.length === 0) throw invalid('messageIds', 'must name at least one message id');
      selection = { messageIds: ids };
    } else {
      const limit = query.has('count') ? count(query, MAX_CANCEL_COUNT, MAX_CANCEL_COUNT) : undefined;
      const filter = messageFilter(query);
      if (!isEmpty(filter)) selection = limit === undefined ? { filter } : { filter, limit };
      else if (limit !== undefined) selection = { all: true, limit };
      else selection = legacyCancelBody(await ctx.body(1024 * 1024));
    }
    return json(200, { cancelled: await messages.cancelMany(selection) });
  }

  async function logs(ctx: RequestContext) {
    const { query } = ctx;
    const eventQuery: EventQuery = { count: count(query, DEFAULT_LOG_COUNT, MAX_LOG_COUNT) };
    const ids = [...values(query, 'messageIds'), ...values(query, 'messageId')];
    if (ids.length > 0) eventQuery.messageIds = ids;
    else {
      eventQuery.filter = messageFilter(query);
      const states = logState(query);
      if (states) eventQuery.states = states;
      const at = cursor(query);
      if (at !== undefined) eventQuery.cursor = at;
    }
    const page = await messages.logs(eventQuery);
    const events = page.items.map(renderLogEvent);
    return json(200, page.cursor === undefined ? { events, logs: events } : { cursor: page.cursor, events, logs: events });
  }

  return [
    {
      methods: ['GET'],
      pattern: /^\/v2\/messages\/(?<id>[^/]+)\/?$/,
      auth: true,
      handler: async (ctx) => json(200, renderMessage(await messages.get(messageId(ctx)))),
    },
    {
      methods: ['DELETE'],
      pattern: /^\/v2\/messages\/(?<id>[^/]+)\/?$/,
      auth: true,
      handler: async (ctx) => json(200, { cancelled: await messages.cancelOne(messageId(ctx)) }),
    },
    { methods: ['DELETE'], pattern: /^\/v2\/messages\/?$/, auth: true, handler: cancelMany },
    { methods: ['GET'], pattern: /^\/v2\/(events|logs)\/?$/, auth: true, handler: logs },
  ];
}
