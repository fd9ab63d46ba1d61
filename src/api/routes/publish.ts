/** POST /v2/publish/{destination}, POST /v2/enqueue/{queue}/{destination} and POST /v2/batch (spec §2, §3.1, §4). */
import { z } from 'zod';
import { CourierError, invalid } from '../../core/errors.js';
import type { Destination, PublishRequest, PublishResult, Published } from '../../messages/message-service.js';
import { GROUP_DESTINATION_PREFIX, parseGroupDestination } from '../../core/instance.js';
import { checkName, MAX_URL_LENGTH, NAME, parseDestinationPath, parseDestinationUrl } from '../destination.js';
import { json, type RequestContext, type Route } from '../http.js';
import { parseJsonBody } from '../json.js';
import { parsePublishHeaders, type IncomingHeaders } from '../publish-headers.js';
import type { ApiServices } from '../services.js';

const PUBLISH_PREFIX = '/v2/publish/';
const ENQUEUE_PREFIX = '/v2/enqueue/';

/**
 * The destination is everything after the prefix in the raw target, query
 * string included (spec §1.1). A `qstash_token` used for auth is removed from
 * it, since it belongs to us, not to the destination.
 */
export function destinationAfter(target: string, prefixLength: number): string {
  const raw = target.slice(prefixLength);
  const queryStart = raw.indexOf('?');
  if (queryStart === -1) return raw;
  // Only our parameter goes; the rest stays byte for byte (URLSearchParams would re-encode `%20` as `+`).
  const kept = raw
    .slice(queryStart + 1)
    .split('&')
    .filter((part) => !isTokenParam(part));
  return kept.length > 0 ? `${raw.slice(0, queryStart)}?${kept.join('&')}` : raw.slice(0, queryStart);
}

/** Decodes the name as the auth check's URLSearchParams does, so `qstash%5Ftoken=` is stripped too. */
function isTokenParam(part: string): boolean {
  const name = part.split('=', 1)[0]!.replace(/\+/g, ' ');
  try {
    return decodeURIComponent(name) === 'qstash_token';
  } catch {
    return false;
  }
}

/** An http(s) URL, or else the name of a URL group (spec §2.1). */
export function resolveDestination(destination: string, field: string): Destination {
  if (/^api\/llm(\/|\?|$)/.test(destination)) {
    throw new CourierError('NOT_SUPPORTED', 'api/llm is not supported by Courier', field);
  }
  if (destination.startsWith(GROUP_DESTINATION_PREFIX)) return { url: instanceGroupDestination(destination, field) };
  if (!/^[a-z][a-z0-9+.-]*:/i.test(destination) && NAME.test(destination)) return { group: destination };
  return { url: parseDestinationUrl(decodeURIComponentSafe(destination), field) };
}

/** `group:<name>/<path>`: one instance of the group takes each attempt (gateway/balancer.ts). */
function instanceGroupDestination(destination: string, field: string): string {
  const { group, path } = parseGroupDestination(destination)!;
  checkName(group, field);
  if (destination.length > MAX_URL_LENGTH) throw invalid(field, `longer than ${MAX_URL_LENGTH} characters`);
  return `${GROUP_DESTINATION_PREFIX}${group}${parseDestinationPath(path, field)}`;
}

/** The SDK pastes destinations raw, but a client that encoded one (`https%3A%2F%2F…`) means the same URL. */
function decodeURIComponentSafe(value: string): string {
  if (!/^https?%3A/i.test(value)) return value;
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

export function publishedJson({ messageId, url, deduplicated }: Published): Record<string, unknown> {
  return deduplicated ? { messageId, url, deduplicated: true } : { messageId, url };
}

/** A URL publish answers an object, a group publish the bare array (spec §2.1, A1). */
export function publishResponse(result: PublishResult): unknown {
  return Array.isArray(result) ? result.map(publishedJson) : publishedJson(result);
}

const isDeduplicated = (result: PublishResult): boolean =>
  Array.isArray(result) ? result.length > 0 && result.every((one) => one.deduplicated) : result.deduplicated;

export function queueNameOf(raw: string, field: string): string {
  let name: string;
  try {
    name = decodeURIComponent(raw);
  } catch {
    throw invalid(field, 'is not valid percent-encoding');
  }
  return checkName(name, field);
}

const BatchItem = z.object({
  destination: z.string().min(1),
  headers: z.record(z.string(), z.string()).optional(),
  body: z.string().optional(),
  queue: z.string().optional(),
  method: z.string().optional(),
});

export function publishRoutes(services: ApiServices): Route[] {
  const { limits, clock, messages } = services;

  async function publishTo(ctx: RequestContext, destination: string, queueName?: string) {
    const request: PublishRequest = {
      destination: resolveDestination(destination, 'destination'),
      options: parsePublishHeaders(ctx.req.headers, limits, clock.now()),
      body: await ctx.body(limits.maxBodyBytes),
      callerIp: ctx.callerIp,
    };
    if (queueName !== undefined) request.queueName = queueName;
    const [result] = await messages.publish([request]);
    return json(isDeduplicated(result!) ? 202 : 200, publishResponse(result!));
  }

  function publish(ctx: RequestContext) {
    return publishTo(ctx, destinationAfter(ctx.target, ctx.target.indexOf(PUBLISH_PREFIX) + PUBLISH_PREFIX.length));
  }

  /** `/v2/enqueue/{queue}/{destination}`: the queue is one raw segment, the destination the rest (spec §3.1). */
  function enqueue(ctx: RequestContext) {
    const start = ctx.target.indexOf(ENQUEUE_PREFIX) + ENQUEUE_PREFIX.length;
    const slash = ctx.target.indexOf('/', start);
    if (slash === -1) throw invalid('destination', 'missing: use /v2/enqueue/{queue}/{destination}');
    const queueName = queueNameOf(ctx.target.slice(start, slash), 'queue');
    return publishTo(ctx, destinationAfter(ctx.target, slash + 1), queueName);
  }

  async function batch(ctx: RequestContext) {
    const raw = await ctx.body(limits.maxBatchBytes);
    const parsed = parseJsonBody(raw, 'must be a JSON array of messages');
    if (!Array.isArray(parsed)) throw invalid('body', 'must be a JSON array of messages');
    if (parsed.length === 0) throw invalid('body', 'must contain at least one message');
    if (parsed.length > limits.maxBatchMessages) {
      throw invalid('body', `at most ${limits.maxBatchMessages} messages per batch (COURIER_MAX_BATCH_MESSAGES), got ${parsed.length}`);
    }
    const now = clock.now();
    // Every item is validated before any is stored: a batch is accepted whole or not at all.
    const requests: PublishRequest[] = parsed.map((item, index) => {
      const field = `[${index}]`;
      const shape = BatchItem.safeParse(item);
      if (!shape.success) {
        const issue = shape.error.issues[0]!;
        throw invalid(`${field}.${issue.path.join('.') || 'item'}`, issue.message);
      }
      const headers: IncomingHeaders = {};
      for (const [name, value] of Object.entries(shape.data.headers ?? {})) headers[name.toLowerCase()] = value;
      if (shape.data.method !== undefined && headers['upstash-method'] === undefined) headers['upstash-method'] = shape.data.method;
      const body = Buffer.from(shape.data.body ?? '', 'utf8');
      if (body.byteLength > limits.maxBodyBytes) {
        throw new CourierError('PAYLOAD_TOO_LARGE', `${field}.body: larger than the ${limits.maxBodyBytes}-byte limit`, `${field}.body`);
      }
      try {
        const request: PublishRequest = {
          destination: resolveDestination(shape.data.destination, `${field}.destination`),
          options: parsePublishHeaders(headers, limits, now),
          body,
          callerIp: ctx.callerIp,
        };
        if (shape.data.queue !== undefined) request.queueName = queueNameOf(shape.data.queue, `${field}.queue`);
        return request;
      } catch (error) {
        if (error instanceof CourierError && error.field && !error.field.startsWith('[')) {
          throw new CourierError(error.code, `${field}.headers.${error.message}`, `${field}.headers.${error.field}`);
        }
        throw error;
      }
    });
    const results = await messages.publish(requests);
    return json(200, results.map(publishResponse));
  }

  return [
    { methods: ['POST'], pattern: /^\/v2\/publish\/./, auth: true, rawQuery: true, handler: publish },
    { methods: ['POST'], pattern: /^\/v2\/enqueue\/[^/]+\/./, auth: true, rawQuery: true, handler: enqueue },
    { methods: ['POST'], pattern: /^\/v2\/batch\/?$/, auth: true, handler: batch },
  ];
}
