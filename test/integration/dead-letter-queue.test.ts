/**
 * The dead-letter queue through the official SDK (spec §6): listing with
 * filters and cursors, deleting one, many and by filter, and retrying entries
 * as new messages that reach the destination again.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { QstashError } from '@upstash/qstash';
import { startTestCourier, type TestCourier } from '../helpers/courier.js';
import { eventually, startDestination, type Destination } from '../helpers/destination.js';

/** A destination that fails with `status` while `failing` is set, and answers 200 otherwise. */
interface Switchable {
  destination: Destination;
  failing: boolean;
  status: number;
}

async function switchable(status: number): Promise<Switchable> {
  const state: Switchable = { destination: undefined as unknown as Destination, failing: true, status };
  state.destination = await startDestination(() =>
    state.failing ? { status: state.status, headers: { 'X-Why': 'failing' }, body: `failed with ${state.status}` } : { status: 200, body: 'ok' },
  );
  return state;
}

/** A QstashError with this HTTP status. */
const withStatus = (status: number) => (error: unknown) => {
  assert.ok(error instanceof QstashError, `expected a QstashError, got ${String(error)}`);
  assert.equal(error.status, status);
  return true;
};

/** Courier plus helpers shared by the suites; each suite gets its own Courier so their DLQs do not mix. */
function setup() {
  const ctx = {
    courier: undefined as unknown as TestCourier,
    destinations: [] as Destination[],
    async destination(status: number): Promise<Switchable> {
      const created = await switchable(status);
      ctx.destinations.push(created.destination);
      return created;
    },
    /** Publishes `bodies` to `url` with no retries and waits until each is in the DLQ; returns their message ids. */
    async deadLetter(url: string, bodies: string[]): Promise<string[]> {
      const ids: string[] = [];
      for (const body of bodies) {
        const { messageId } = await ctx.courier.client.publish({
          url,
          body,
          retries: 0,
          headers: { 'Content-Type': 'text/plain', 'X-Original': body },
        });
        ids.push(messageId);
      }
      await eventually(async () => {
        const { messages } = await ctx.courier.client.dlq.listMessages({ filter: { url } });
        return messages.length >= bodies.length ? true : undefined;
      }, 10_000, `${bodies.length} DLQ entries for ${url}`);
      return ids;
    },
    async entriesFor(url: string) {
      return (await ctx.courier.client.dlq.listMessages({ filter: { url } })).messages;
    },
  };
  before(async () => {
    ctx.courier = await startTestCourier();
  });
  after(async () => {
    await Promise.all(ctx.destinations.map((d) => d.close()));
    await ctx.courier.stop();
  });
  return ctx;
}

describe('DLQ listing', () => {
  const ctx = setup();
  let urlA: string;
  let urlB: string;
  let idsA: string[];
  let idsB: string[];

  before(async () => {
    const a = await ctx.destination(500);
    const b = await ctx.destination(404);
    urlA = a.destination.url('/a');
    urlB = b.destination.url('/b?q=1');
    idsA = await ctx.deadLetter(urlA, ['a1', 'a2', 'a3']);
    idsB = await ctx.deadLetter(urlB, ['b1', 'b2']);
  });

  it('lists every entry, oldest first, with the original message and the last response', async () => {
    const { messages, cursor } = await ctx.courier.client.dlq.listMessages();
    assert.equal(cursor, undefined, 'a single page has no cursor');
    assert.deepEqual(
      messages.map((m) => m.messageId),
      [...idsA, ...idsB],
    );
    const first = messages[0]!;
    assert.match(first.dlqId, /\S/);
    assert.equal(first.url, urlA);
    assert.equal(first.body, 'a1');
    assert.deepEqual(first.header?.['X-Original'], ['a1']);
    assert.equal(first.responseStatus, 500);
    assert.equal(first.responseBody, 'failed with 500');
    assert.equal(new Set(messages.map((m) => m.dlqId)).size, 5, 'dlqIds are unique');
  });

  it('filters by url', async () => {
    const { messages } = await ctx.courier.client.dlq.listMessages({ filter: { url: urlB } });
    assert.deepEqual(
      messages.map((m) => m.messageId),
      idsB,
    );
  });

  it('filters by responseStatus, one value or several', async () => {
    const notFound = await ctx.courier.client.dlq.listMessages({ filter: { responseStatus: 404 } });
    assert.deepEqual(
      notFound.messages.map((m) => m.messageId),
      idsB,
    );
    const both = await ctx.courier.client.dlq.listMessages({ filter: { responseStatus: [500, 404] } });
    assert.equal(both.messages.length, 5);
    const none = await ctx.courier.client.dlq.listMessages({ filter: { url: urlA, responseStatus: 404 } });
    assert.deepEqual(none.messages, [], 'different filter keys are ANDed');
  });

  it('pages with count and cursor, and gives no cursor on the last page', async () => {
    const pages: string[][] = [];
    let cursor: string | undefined;
    do {
      const page = await ctx.courier.client.dlq.listMessages({ count: 2, ...(cursor ? { cursor } : {}) });
      pages.push(page.messages.map((m) => m.messageId));
      cursor = page.cursor;
      if (cursor !== undefined) assert.equal(typeof cursor, 'string');
    } while (cursor !== undefined && pages.length < 10);
    assert.deepEqual(
      pages.map((page) => page.length),
      [2, 2, 1],
    );
    assert.deepEqual(pages.flat(), [...idsA, ...idsB]);
    assert.equal(cursor, undefined);
  });

  it('keeps the last response headers under canonical (Go-style) names', async () => {
    const [entry] = (await ctx.courier.client.dlq.listMessages({ filter: { url: urlA } })).messages;
    assert.deepEqual(entry?.responseHeader?.['X-Why'], ['failing'], `got keys ${Object.keys(entry?.responseHeader ?? {}).join(', ')}`);
  });
});

describe('DLQ delete', () => {
  const ctx = setup();

  it('deletes one entry; deleting it again fails with 404', async () => {
    const target = await ctx.destination(500);
    const url = target.destination.url('/delete-one');
    await ctx.deadLetter(url, ['d1', 'd2']);
    const [first, second] = await ctx.entriesFor(url);
    assert.deepEqual(await ctx.courier.client.dlq.delete(first!.dlqId), { deleted: 1 });
    assert.deepEqual(
      (await ctx.entriesFor(url)).map((m) => m.dlqId),
      [second!.dlqId],
    );
    await assert.rejects(ctx.courier.client.dlq.delete(first!.dlqId), withStatus(404));
  });

  it('deletes several entries by dlqId', async () => {
    const target = await ctx.destination(500);
    const url = target.destination.url('/delete-many');
    await ctx.deadLetter(url, ['m1', 'm2', 'm3']);
    const [one, two, three] = await ctx.entriesFor(url);
    const result = await ctx.courier.client.dlq.delete([one!.dlqId, three!.dlqId]);
    assert.equal(result.deleted, 2);
    assert.equal(result.cursor, undefined);
    assert.deepEqual(
      (await ctx.entriesFor(url)).map((m) => m.dlqId),
      [two!.dlqId],
    );
  });

  it('bulk-deletes only the entries a filter matches', async () => {
    const failing500 = await ctx.destination(500);
    const failing404 = await ctx.destination(404);
    const url500 = failing500.destination.url('/bulk');
    const url404 = failing404.destination.url('/bulk');
    await ctx.deadLetter(url500, ['x1', 'x2']);
    await ctx.deadLetter(url404, ['y1', 'y2']);
    const result = await ctx.courier.client.dlq.delete({ filter: { url: [url500, url404], responseStatus: 404 } });
    assert.equal(result.deleted, 2);
    assert.equal(result.cursor, undefined, 'no cursor once everything matching is deleted');
    assert.deepEqual(await ctx.entriesFor(url404), []);
    assert.equal((await ctx.entriesFor(url500)).length, 2, 'entries the filter does not match stay');
  });

  it('refuses a bulk delete with a misspelled filter key (400) and deletes nothing', async () => {
    const target = await ctx.destination(500);
    const url = target.destination.url('/typo');
    await ctx.deadLetter(url, ['t1']);
    const before = (await ctx.courier.client.dlq.listMessages()).messages.length;
    // The cast stands in for a caller without types (or an older SDK) sending a key the server does not know.
    await assert.rejects(ctx.courier.client.dlq.delete({ filter: { urll: url } } as never), withStatus(400));
    assert.equal((await ctx.courier.client.dlq.listMessages()).messages.length, before);
    const raw = await ctx.courier.api('/v2/dlq?responseStatuss=500', { method: 'DELETE' });
    assert.equal(raw.status, 400);
    assert.match(String(((await raw.json()) as { error?: unknown }).error), /responseStatuss/);
    assert.equal((await ctx.courier.client.dlq.listMessages()).messages.length, before);
  });

  it('bulk-deletes everything in pages with all: true, giving a cursor until done', async () => {
    const target = await ctx.destination(500);
    await ctx.deadLetter(target.destination.url('/all'), ['z1', 'z2', 'z3']);
    let total = (await ctx.courier.client.dlq.listMessages()).messages.length;
    assert.ok(total >= 3);
    let cursor: string | undefined;
    let calls = 0;
    do {
      const result = await ctx.courier.client.dlq.delete({ all: true, count: 2, ...(cursor ? { cursor } : {}) });
      assert.ok(result.deleted <= 2);
      total -= result.deleted;
      cursor = result.cursor;
      calls += 1;
    } while (cursor !== undefined && calls < 20);
    assert.equal(total, 0);
    assert.deepEqual((await ctx.courier.client.dlq.listMessages()).messages, []);
  });
});

describe('DLQ retry', () => {
  const ctx = setup();

  it('retries one entry as a new message that reaches the destination with the original body and headers', async () => {
    const target = await ctx.destination(500);
    const url = target.destination.url('/retry-one?k=v');
    const [originalId] = await ctx.deadLetter(url, ['original body']);
    const [entry] = await ctx.entriesFor(url);
    target.failing = false;

    const { responses } = await ctx.courier.client.dlq.retry(entry!.dlqId);
    assert.equal(responses.length, 1);
    const newId = responses[0]!.messageId;
    assert.match(newId, /^msg_/);
    assert.notEqual(newId, originalId);
    assert.deepEqual(await ctx.entriesFor(url), [], 'the entry leaves the DLQ');

    const arrivals = await target.destination.waitFor(2);
    const replay = arrivals[1]!;
    assert.equal(replay.headers['upstash-message-id'], newId);
    assert.equal(replay.headers['upstash-retried'], '0');
    assert.equal(replay.body.toString(), 'original body');
    assert.equal(replay.headers['x-original'], 'original body');
    assert.equal(replay.headers['content-type'], 'text/plain');
    assert.equal(replay.path, '/retry-one?k=v');
    const verified = await ctx.courier.receiver().verify({
      signature: String(replay.headers['upstash-signature']),
      body: replay.body.toString(),
      url,
    });
    assert.equal(verified, true);
    await assert.rejects(ctx.courier.client.dlq.delete(entry!.dlqId), withStatus(404), 'a retried entry is gone for good');
  });

  it('retries several entries at once, each as a new message', async () => {
    const target = await ctx.destination(503);
    const url = target.destination.url('/retry-many');
    const originalIds = await ctx.deadLetter(url, ['r1', 'r2', 'r3']);
    const [one, two, three] = await ctx.entriesFor(url);
    target.failing = false;

    const { responses, cursor } = await ctx.courier.client.dlq.retry([one!.dlqId, two!.dlqId]);
    assert.equal(cursor, undefined);
    assert.equal(responses.length, 2);
    const newIds = responses.map((r) => r.messageId);
    assert.equal(new Set(newIds).size, 2);
    for (const id of newIds) assert.ok(!originalIds.includes(id), 'a retry gets a new message id');
    assert.deepEqual(
      (await ctx.entriesFor(url)).map((m) => m.dlqId),
      [three!.dlqId],
    );

    const arrivals = await target.destination.waitFor(5);
    const replays = arrivals.slice(3);
    assert.deepEqual(replays.map((a) => a.body.toString()).sort(), ['r1', 'r2']);
    assert.deepEqual(replays.map((a) => String(a.headers['upstash-message-id'])).sort(), [...newIds].sort());
  });

  it('retries the entries a filter matches', async () => {
    const target = await ctx.destination(500);
    const url = target.destination.url('/retry-filter');
    await ctx.deadLetter(url, ['f1', 'f2']);
    target.failing = false;
    const { responses } = await ctx.courier.client.dlq.retry({ filter: { url } });
    assert.equal(responses.length, 2);
    assert.deepEqual(await ctx.entriesFor(url), []);
    const arrivals = await target.destination.waitFor(4);
    assert.deepEqual(arrivals.slice(2).map((a) => a.body.toString()).sort(), ['f1', 'f2']);
  });

  it('puts a retried message that fails again back in the DLQ under its new id', async () => {
    const target = await ctx.destination(500);
    const url = target.destination.url('/retry-again');
    await ctx.deadLetter(url, ['again']);
    const [entry] = await ctx.entriesFor(url);
    const { responses } = await ctx.courier.client.dlq.retry(entry!.dlqId);
    const newId = responses[0]!.messageId;
    const back = await eventually(async () => (await ctx.entriesFor(url))[0], 10_000, 'the entry back in the DLQ');
    assert.equal(back.messageId, newId);
    assert.notEqual(back.dlqId, entry!.dlqId);
    assert.equal(back.body, 'again');
  });
});
