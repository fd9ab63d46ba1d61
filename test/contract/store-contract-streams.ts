/**
 * Store contract cases for task streams (StreamStore): appends with their
 * writer-seq and closing rules, reads, listing, deletion, retention and
 * concurrent writers. runStoreContract calls this inside its suite, so every
 * case runs on that suite's fresh, empty store. Cross-node notification
 * (watchStreams) needs two nodes and lives in the PostgreSQL and Redis files.
 *
 * Records are compared strictly, so an optional field left unset (endedAt,
 * messageId) must come back absent, not undefined or null.
 */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import type { NewStreamEvent, StreamEvent, StreamRecord } from '../../src/core/stream.js';
import type { Store, StreamAppend, StreamAppendResult } from '../../src/store/port.js';

export interface StreamKit {
  /** The current case's store (set by the suite's beforeEach). */
  store: () => Store;
  /** Closes the store and opens the same data again; undefined when the store cannot be reopened in a test. */
  reopen: () => Promise<Store> | undefined;
  /** A second store on the same data (another node's connection); undefined for an exclusive store. */
  another: () => Promise<Store> | undefined;
  /** The base time every case counts from. */
  T: number;
}

const event = (type: string, data = '', extra: Partial<NewStreamEvent> = {}): NewStreamEvent => ({ type, data, json: false, ...extra });
const content = (data: string, seq?: number): NewStreamEvent => event('content', data, seq === undefined ? {} : { seq });
const IDLE = { type: 'error', data: '{"reason":"idle"}', json: true };

function appended(result: StreamAppendResult): Extract<StreamAppendResult, { kind: 'appended' }> {
  assert.equal(result.kind, 'appended', `expected appended, got ${JSON.stringify(result)}`);
  return result;
}

const seqs = (events: StreamEvent[]): number[] => events.map((e) => e.seq);

export function runStreamCases(kit: StreamKit): void {
  const { T } = kit;
  const store = (): Store => kit.store();
  const append = (streamId: string, events: NewStreamEvent[], overrides: Partial<StreamAppend> = {}): Promise<StreamAppendResult> =>
    store().appendStreamEvents({ streamId, events, at: T, author: 'writer', maxEvents: 1000, ...overrides });
  const all = (streamId: string): Promise<StreamEvent[]> => store().readStreamEvents(streamId, 0, 10_000);

  describe('task streams', () => {
    it('the first append creates the stream: open, seqs from 1, its times; messageId only when given', async () => {
      assert.equal(await store().getStream('task_1'), undefined);
      const first = appended(await append('task_1', [content('Once'), content(' upon')]));
      const record: StreamRecord = { id: 'task_1', state: 'open', lastSeq: 2, firstSeq: 1, createdAt: T, updatedAt: T, writerClosed: false };
      assert.deepEqual(first.stream, record);
      assert.deepEqual(first.events, [
        { seq: 1, type: 'content', data: 'Once', json: false, at: T },
        { seq: 2, type: 'content', data: ' upon', json: false, at: T },
      ]);
      assert.deepEqual(await store().getStream('task_1'), record);
      const tied = appended(await append('task_2', [event('status', 'queued')], { author: 'courier', messageId: 'msg_1' }));
      assert.deepEqual(tied.stream, { ...record, id: 'task_2', lastSeq: 1, messageId: 'msg_1' });
    });

    it('seqs continue across appends; updatedAt moves, createdAt stays, and a later messageId does not tie it', async () => {
      appended(await append('s', [content('a')]));
      const second = appended(await append('s', [content('b'), content('c')], { at: T + 5, messageId: 'msg_late' }));
      assert.deepEqual(seqs(second.events), [2, 3]);
      assert.deepEqual(second.events.map((e) => e.at), [T + 5, T + 5]);
      assert.deepEqual(second.stream, { id: 's', state: 'open', lastSeq: 3, firstSeq: 1, createdAt: T, updatedAt: T + 5, writerClosed: false });
    });

    it('a batch is atomic: a writer seq past the next one is a gap naming it, and nothing is stored or created', async () => {
      assert.deepEqual(await append('new', [content('a'), content('b'), content('z', 9)]), { kind: 'gap', expectedSeq: 3 });
      assert.equal(await store().getStream('new'), undefined, 'a refused first append creates nothing');
      const before = appended(await append('s', [content('a', 1)])).stream;
      assert.deepEqual(await append('s', [content('b'), content('c', 5)], { at: T + 1 }), { kind: 'gap', expectedSeq: 3 });
      assert.deepEqual(await store().getStream('s'), before);
      assert.deepEqual(seqs(await all('s')), [1]);
    });

    it('writer seqs at or below the last seq are skipped, the next one is stored under it, others take the next', async () => {
      appended(await append('s', [content('1', 1), content('2', 2), content('3', 3)]));
      const resent = appended(await append('s', [1, 2, 3, 4, 5].map((n) => content(String(n), n)), { at: T + 1 }));
      assert.deepEqual(resent.events.map((e) => [e.seq, e.data]), [[4, '4'], [5, '5']]);
      const twice = appended(await append('s', [content('6', 6), content('6 again', 6), content('7 unnumbered')]));
      assert.deepEqual(twice.events.map((e) => [e.seq, e.data]), [[6, '6'], [7, '7 unnumbered']], 'a seq repeated within a batch is skipped too');
      assert.deepEqual((await all('s')).map((e) => e.data), ['1', '2', '3', '4', '5', '6', '7 unnumbered']);
    });

    it('a batch whose writer seqs are all stored is appended with no events and no change, even on a closed stream', async () => {
      appended(await append('s', [content('a', 1), event('end', '', { seq: 2 })], { closes: 'ended' }));
      const closed = await store().getStream('s');
      assert.equal(closed?.state, 'ended');
      const resent = await append('s', [event('end', '', { seq: 2 })], { closes: 'ended', at: T + 9 });
      assert.deepEqual(resent, { kind: 'appended', stream: closed, events: [] });
      assert.deepEqual(await store().getStream('s'), closed, 'updatedAt did not move');
      const empty = appended(await append('unknown', []));
      assert.deepEqual(empty.events, []);
      assert.equal(await store().getStream('unknown'), undefined, 'an append that stores nothing creates nothing');
    });

    it('closes on a plain stream ends it (ended or failed, endedAt); appends then answer closed and change nothing', async () => {
      appended(await append('ok', [content('a')]));
      const ended = appended(await append('ok', [content('b'), event('end')], { closes: 'ended', at: T + 1 })).stream;
      assert.deepEqual(ended, { id: 'ok', state: 'ended', lastSeq: 3, firstSeq: 1, createdAt: T, updatedAt: T + 1, endedAt: T + 1, writerClosed: false });
      assert.deepEqual(await append('ok', [content('late')], { at: T + 2 }), { kind: 'closed', stream: ended });
      assert.deepEqual(await append('ok', [content('numbered', 9)], { at: T + 2 }), { kind: 'closed', stream: ended }, 'closed before gap');
      assert.deepEqual(await append('ok', [event('status', 'x')], { author: 'courier', at: T + 2 }), { kind: 'closed', stream: ended });
      assert.deepEqual(seqs(await all('ok')), [1, 2, 3]);
      const failed = appended(await append('bad', [event('error', '{"message":"boom"}', { json: true })], { closes: 'failed', at: T + 3 }));
      assert.equal(failed.stream.state, 'failed');
      assert.equal(failed.stream.endedAt, T + 3);
    });

    it('on a tied stream the writer’s end only closes it to writers; Courier may still write, and its closes ends it', async () => {
      appended(await append('t', [event('status', 'queued')], { author: 'courier', messageId: 'msg_1' }));
      const writerEnd = appended(await append('t', [content('hi'), event('end')], { closes: 'ended', at: T + 1 })).stream;
      assert.deepEqual(writerEnd, {
        id: 't', state: 'open', lastSeq: 3, firstSeq: 1, createdAt: T, updatedAt: T + 1, messageId: 'msg_1', writerClosed: true,
      });
      assert.deepEqual(await append('t', [content('more')], { at: T + 2 }), { kind: 'closed', stream: writerEnd });
      appended(await append('t', [event('status', 'running')], { author: 'courier', at: T + 3 }));
      const done = appended(await append('t', [event('status', 'delivered')], { author: 'courier', closes: 'ended', at: T + 4 }));
      assert.deepEqual(seqs(done.events), [5]);
      assert.deepEqual(done.stream, { ...writerEnd, state: 'ended', lastSeq: 5, updatedAt: T + 4, endedAt: T + 4 });
      assert.deepEqual(await append('t', [event('status', 'x')], { author: 'courier', at: T + 5 }), { kind: 'closed', stream: done.stream });
    });

    it('an append that would pass maxEvents answers full and changes nothing', async () => {
      const limits = { maxEvents: 3 };
      assert.equal((await append('new', [content('1'), content('2'), content('3'), content('4')], limits)).kind, 'full');
      assert.equal(await store().getStream('new'), undefined, 'a refused first append creates nothing');
      const two = appended(await append('s', [content('1'), content('2')], limits)).stream;
      assert.deepEqual(await append('s', [content('3'), content('4')], { ...limits, at: T + 1 }), { kind: 'full', stream: two });
      const three = appended(await append('s', [content('3')], { ...limits, at: T + 2 })).stream;
      assert.deepEqual(await append('s', [content('4')], { ...limits, at: T + 3 }), { kind: 'full', stream: three });
      assert.deepEqual(seqs(await all('s')), [1, 2, 3]);
    });

    it('readStreamEvents answers up to limit events after a seq, in seq order', async () => {
      appended(await append('s', ['a', 'b', 'c', 'd', 'e'].map((d) => content(d))));
      assert.deepEqual(seqs(await store().readStreamEvents('s', 0, 10)), [1, 2, 3, 4, 5]);
      assert.deepEqual(seqs(await store().readStreamEvents('s', 2, 2)), [3, 4]);
      assert.deepEqual(seqs(await store().readStreamEvents('s', 4, 10)), [5]);
      assert.deepEqual(await store().readStreamEvents('s', 5, 10), []);
      assert.deepEqual(await store().readStreamEvents('unknown', 0, 10), []);
    });

    it('event data round-trips exactly: multi-line, unicode, NUL, empty, JSON text with its flag, user types', async () => {
      const events: NewStreamEvent[] = [
        content('line 1\nline 2\r\nline 3\r\n'),
        content(''),
        content('  spaced  '),
        content('héllo — 你好 🎉 \u{1F469}\u200d\u{1F4BB} \u00a0\u200b'),
        content('before\u0000after'),
        event('result', '{"a":[1,2,{"b":"c\\nd"}],"e":"ü"}', { json: true }),
        event('count', '42', { json: true }),
        event('my-type_2', '"quoted"', { json: true }),
        event('note', '"quoted" but a string'),
      ];
      const stored = appended(await append('s', events)).events;
      assert.deepEqual(stored, events.map((e, i) => ({ seq: i + 1, type: e.type, data: e.data, json: e.json, at: T })));
      assert.deepEqual(await all('s'), stored);
    });

    it('listStreams answers streams in byte-wise id order, narrowed by state, paged by cursor', async () => {
      const ids = ['b', 'a', 'B', 'a.1', 'a-1', 'A', '_x', 'z:9', '0', 'a:b', 'task_10', 'task_9'];
      for (const [i, id] of ids.entries()) {
        const closes = i % 3 === 1 ? 'ended' : i % 3 === 2 ? 'failed' : undefined;
        appended(await append(id, [content(id)], { at: T + i, ...(closes ? { closes } : {}) }));
      }
      const byteOrder = [...ids].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
      const pages = async (state?: 'open' | 'ended' | 'failed'): Promise<StreamRecord[]> => {
        const out: StreamRecord[] = [];
        let cursor: string | undefined;
        for (let n = 0; n < 20; n++) {
          const page = await store().listStreams({ count: 3, ...(state ? { state } : {}), ...(cursor ? { cursor } : {}) });
          assert.ok(page.items.length <= 3);
          if (page.cursor !== undefined) assert.equal(page.items.length, 3, 'a page with a cursor is full');
          out.push(...page.items);
          cursor = page.cursor;
          if (cursor === undefined) return out;
        }
        assert.fail('paging did not end');
      };
      const listed = await pages();
      assert.deepEqual(listed.map((s) => s.id), byteOrder);
      for (const record of listed) assert.deepEqual(await store().getStream(record.id), record);
      for (const state of ['open', 'ended', 'failed'] as const) {
        const expected = byteOrder.filter((id) => ['open', 'ended', 'failed'][ids.indexOf(id) % 3] === state);
        assert.deepEqual((await pages(state)).map((s) => s.id), expected, state);
      }
      assert.deepEqual(await store().listStreams({ count: 100, cursor: 'zz' }), { items: [] });
    });

    it('deleteStream removes the stream and its events; false for an unknown one; the id then starts afresh', async () => {
      appended(await append('s', [content('a'), content('b')]));
      appended(await append('other', [content('x')]));
      assert.equal(await store().deleteStream('s'), true);
      assert.equal(await store().getStream('s'), undefined);
      assert.deepEqual(await all('s'), []);
      assert.equal(await store().deleteStream('s'), false);
      assert.equal(await store().deleteStream('never'), false);
      assert.deepEqual((await store().listStreams({ count: 10 })).items.map((s) => s.id), ['other']);
      const again = appended(await append('s', [content('new')], { at: T + 7 }));
      assert.deepEqual(again.events.map((e) => [e.seq, e.data]), [[1, 'new']]);
      assert.equal(again.stream.createdAt, T + 7);
    });

    it('expireStreams fails open streams idle since idleBefore with the idle event, tied or not, writer-closed or not', async () => {
      appended(await append('idle', [content('a')]));
      appended(await append('idle-tied', [event('status', 'running')], { author: 'courier', messageId: 'msg_1' }));
      appended(await append('idle-tied', [event('end')], { closes: 'ended' }));
      appended(await append('boundary', [content('a')], { at: T + 5_000 }));
      appended(await append('fresh', [content('a')], { at: T + 9_000 }));
      const at = T + 20_000;
      const expired = await store().expireStreams({ idleBefore: T + 5_000, closedBefore: T - 1, at, idleEvent: IDLE, limit: 100 });
      assert.deepEqual([...expired.closedIdle].sort(), ['idle', 'idle-tied']);
      assert.equal(expired.removed, 0);
      assert.deepEqual(await store().getStream('idle'), {
        id: 'idle', state: 'failed', lastSeq: 2, firstSeq: 1, createdAt: T, updatedAt: at, endedAt: at, writerClosed: false,
      });
      assert.deepEqual((await all('idle'))[1], { seq: 2, ...IDLE, at });
      const tied = await store().getStream('idle-tied');
      assert.equal(tied?.state, 'failed');
      assert.deepEqual((await all('idle-tied')).map((e) => e.type), ['status', 'end', 'error']);
      assert.equal((await store().getStream('boundary'))?.state, 'open', 'a write at idleBefore is not idle');
      assert.equal((await store().getStream('fresh'))?.state, 'open');
    });

    it('expireStreams removes closed streams that ended before closedBefore, with their events', async () => {
      appended(await append('old-ended', [event('end')], { closes: 'ended' }));
      appended(await append('old-failed', [event('error')], { closes: 'failed', at: T + 1 }));
      appended(await append('tied', [event('status', 'delivered')], { author: 'courier', messageId: 'm', closes: 'ended', at: T + 2 }));
      appended(await append('at-cutoff', [event('end')], { closes: 'ended', at: T + 5_000 }));
      appended(await append('recent', [event('end')], { closes: 'ended', at: T + 9_000 }));
      appended(await append('open', [content('a')]));
      const expired = await store().expireStreams({ idleBefore: T - 1, closedBefore: T + 5_000, at: T + 20_000, idleEvent: IDLE, limit: 100 });
      assert.deepEqual(expired, { closedIdle: [], removed: 3 });
      for (const id of ['old-ended', 'old-failed', 'tied']) {
        assert.equal(await store().getStream(id), undefined, id);
        assert.deepEqual(await all(id), [], id);
      }
      assert.deepEqual((await store().listStreams({ count: 10 })).items.map((s) => s.id), ['at-cutoff', 'open', 'recent']);
    });

    it('expireStreams closes at most limit idle streams and removes at most limit closed ones per call', async () => {
      for (const id of ['i1', 'i2', 'i3']) appended(await append(id, [content('a')]));
      for (const id of ['c1', 'c2', 'c3']) appended(await append(id, [event('end')], { closes: 'ended' }));
      const request = { idleBefore: T + 1, closedBefore: T + 1, at: T + 10, idleEvent: IDLE, limit: 2 };
      const first = await store().expireStreams(request);
      assert.equal(first.closedIdle.length, 2);
      assert.equal(first.removed, 2);
      const second = await store().expireStreams({ ...request, at: T + 11 });
      assert.equal(second.closedIdle.length, 1);
      assert.equal(second.removed, 1);
      assert.deepEqual(new Set([...first.closedIdle, ...second.closedIdle]), new Set(['i1', 'i2', 'i3']));
      assert.deepEqual(await store().expireStreams({ ...request, at: T + 12 }), { closedIdle: [], removed: 0 });
      assert.deepEqual((await store().listStreams({ count: 10 })).items.map((s) => [s.id, s.state]), [['i1', 'failed'], ['i2', 'failed'], ['i3', 'failed']]);
    });

    it('keeps streams and their events across a reopen', async (t: TestContext) => {
      const stream = appended(await append('s', [content('a'), event('result', '[1]', { json: true })], { messageId: 'msg_1' }));
      const closed = appended(await append('c', [event('end')], { closes: 'ended', at: T + 1 }));
      const reopening = kit.reopen();
      if (!reopening) return t.skip('this store cannot be reopened in a test');
      const reopened = await reopening;
      assert.deepEqual(await reopened.getStream('s'), stream.stream);
      assert.deepEqual(await reopened.readStreamEvents('s', 0, 10), stream.events);
      assert.deepEqual(await reopened.getStream('c'), closed.stream);
      assert.deepEqual(seqs(appended(await reopened.appendStreamEvents({
        streamId: 's', events: [content('b')], at: T + 2, author: 'writer', maxEvents: 1000,
      })).events), [3]);
    });

    it('concurrent appends to one stream, through two connections where the store has them, get distinct contiguous seqs', async () => {
      const second = (await kit.another()) ?? store();
      try {
        const writers = [store(), second].map((node, w) =>
          Promise.all(Array.from({ length: 15 }, (_, i) => node.appendStreamEvents({
            streamId: 'race', events: [content(`${w}.${i}.a`), content(`${w}.${i}.b`)], at: T + i, author: 'writer', maxEvents: 1000,
          }))),
        );
        const results = (await Promise.all(writers)).flat().map(appended);
        for (const result of results) {
          const [a, b] = result.events;
          assert.equal(b!.seq, a!.seq + 1, 'a batch’s seqs are contiguous');
          assert.equal(b!.data, a!.data.replace(/a$/, 'b'));
        }
        const stored = await all('race');
        assert.deepEqual(seqs(stored), Array.from({ length: 60 }, (_, i) => i + 1));
        assert.deepEqual(stored, results.flatMap((r) => r.events).sort((x, y) => x.seq - y.seq));
        assert.equal((await store().getStream('race'))?.lastSeq, 60);
      } finally {
        if (second !== store()) await second.close();
      }
    });

    it('watchStreams resolves once listening, and its stop function resolves', async () => {
      const stop = await store().watchStreams(() => undefined);
      await stop();
    });
  });
}
