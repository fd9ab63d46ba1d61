/**
 * Group commit for publishes: every publish that arrives in the same turn of
 * the event loop is stored by one `store.enqueue` call (one transaction),
 * and each caller gets its own slice of the results. No caller is answered
 * before the transaction holding its messages has committed, so durability
 * is unchanged; only the per-transaction cost is shared.
 *
 * One commit at a time: publishes that arrive while a commit is in flight
 * (on a networked store, its round trip) wait for it and then go together in
 * the next. Overlapping commits instead would each carry a few messages, and
 * per-statement costs, not rows, would bound throughput.
 */
import type { NewMessage } from '../core/message.js';
import type { EnqueueResult, Handoff, MessageStore } from '../store/port.js';

interface Waiting {
  messages: NewMessage[];
  resolve: (results: EnqueueResult[]) => void;
  reject: (error: unknown) => void;
}

/** Bounds one transaction, so a burst does not hold the store (and, for SQLite, the event loop) for long. */
const MAX_MESSAGES_PER_COMMIT = 2_000;

export class EnqueueCoalescer {
  private waiting: Waiting[] = [];
  /** A flush is scheduled or running: it takes whatever is waiting when it next looks. */
  private flushing = false;

  constructor(
    private readonly store: Pick<MessageStore, 'enqueue'>,
    /** Asked once per commit, so the hand-off reflects delivery's room at that moment. */
    private readonly handoff: () => Handoff | undefined = () => undefined,
  ) {}

  enqueue(messages: NewMessage[], at: () => number): Promise<EnqueueResult[]> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ messages, resolve, reject });
      if (this.flushing) return;
      this.flushing = true;
      setImmediate(() => void this.flush(at));
    });
  }

  private async flush(at: () => number): Promise<void> {
    while (this.waiting.length > 0) {
      const group: Waiting[] = [];
      let size = 0;
      while (this.waiting.length > 0 && (group.length === 0 || size + this.waiting[0]!.messages.length <= MAX_MESSAGES_PER_COMMIT)) {
        const next = this.waiting.shift()!;
        group.push(next);
        size += next.messages.length;
      }
      try {
        const results = await this.store.enqueue(group.flatMap((waiting) => waiting.messages), at(), this.handoff());
        let offset = 0;
        for (const waiting of group) {
          waiting.resolve(results.slice(offset, offset + waiting.messages.length));
          offset += waiting.messages.length;
        }
      } catch (error) {
        for (const waiting of group) waiting.reject(error);
      }
    }
    this.flushing = false;
  }
}
