/**
 * The driver boundary of the PostgreSQL store: the client type, typed query
 * helpers, array parameters (bulk writes go through `unnest`, so a statement's
 * text does not vary with the batch size and stays prepared), and the
 * work-notification channel.
 */
import type postgres from 'postgres';

/** A pooled client or a transaction's connection: both run queries. */
export type Db = postgres.ISql;
export type Client = postgres.Sql;

/** Type oids for array parameters. */
export const OID = { text: 25, int8: 20, int4: 23, bytea: 17, bool: 16 } as const;

type Param = postgres.ParameterOrJSON<never>;

/** Hot statements are prepared once per connection; their text never embeds values. */
export async function rows<T>(db: Db, text: string, params: readonly unknown[] = []): Promise<T[]> {
  return (await db.unsafe(text, params as Param[], { prepare: true })) as unknown as T[];
}

export async function first<T>(db: Db, text: string, params: readonly unknown[] = []): Promise<T | undefined> {
  return (await rows<T>(db, text, params))[0];
}

/** Runs a statement; answers how many rows it changed. */
export async function exec(db: Db, text: string, params: readonly unknown[] = []): Promise<number> {
  const result = await db.unsafe(text, params as Param[], { prepare: true });
  return result.count;
}

/** Statements whose text depends on which filters are set: not prepared, so the per-connection cache stays small. */
export async function adhoc<T>(db: Db, text: string, params: readonly unknown[] = []): Promise<T[]> {
  return (await db.unsafe(text, params as Param[])) as unknown as T[];
}

export function array(db: Db, values: readonly unknown[], oid: number): unknown {
  return db.array(values as never[], oid);
}

/**
 * Tells every node listening on `channel` (this one too) the earliest due
 * time of work just committed. Called after the commit, so a listener never
 * wakes for work it cannot see yet. NOTIFY serialises committing transactions
 * on the server's notification queue, so one NOTIFY inside every publish
 * halved single-publish throughput; instead the times told while a NOTIFY is
 * in flight are folded into the next one: at most one in flight per node,
 * carrying the earliest time not yet told.
 */
export class WorkNotifier {
  private pending: number | undefined;
  private flushing: Promise<void> | undefined;

  constructor(
    private readonly sql: Client,
    private readonly channel: string,
    private readonly onError: (error: unknown) => void,
  ) {}

  tell(dueAt: number | undefined): void {
    if (dueAt === undefined) return;
    this.pending = earliest(this.pending, dueAt);
    this.flushing ??= this.flush();
  }

  private async flush(): Promise<void> {
    while (this.pending !== undefined) {
      const dueAt = this.pending;
      this.pending = undefined;
      try {
        await this.sql.unsafe('SELECT pg_notify($1, $2)', [this.channel, String(dueAt)], { prepare: true });
      } catch (error) {
        // Other nodes then learn of this work by their safety poll; nothing is lost.
        this.onError(error);
      }
    }
    this.flushing = undefined;
  }

  /** Resolves once every time told so far has been sent. */
  async drain(): Promise<void> {
    while (this.flushing) await this.flushing;
  }
}

/**
 * Tells every node listening on the streams channel (this one too) that a
 * stream was appended to, as `<lastSeq> <streamId>`, after the commit, so a
 * listener reading up to lastSeq finds the events. Like WorkNotifier, at most
 * one NOTIFY statement is in flight per node; streams told meanwhile go out
 * together in the next, each with the highest seq told. A lost notification
 * only delays other nodes' followers until the stream's next append: its
 * payload's lastSeq covers everything before it.
 */
export class StreamNotifier {
  private readonly pending = new Map<string, number>();
  private flushing: Promise<void> | undefined;

  constructor(
    private readonly sql: Client,
    private readonly channel: string,
    private readonly onError: (error: unknown) => void,
  ) {}

  tell(streamId: string, lastSeq: number): void {
    if ((this.pending.get(streamId) ?? 0) >= lastSeq) return;
    this.pending.set(streamId, lastSeq);
    this.flushing ??= this.flush();
  }

  private async flush(): Promise<void> {
    while (this.pending.size > 0) {
      const payloads = [...this.pending].map(([streamId, lastSeq]) => `${lastSeq} ${streamId}`);
      this.pending.clear();
      try {
        await this.sql.unsafe('SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p', [this.channel, array(this.sql, payloads, OID.text) as never], {
          prepare: true,
        });
      } catch (error) {
        this.onError(error);
      }
    }
    this.flushing = undefined;
  }

  /** Resolves once every append told so far has been sent. */
  async drain(): Promise<void> {
    while (this.flushing) await this.flushing;
  }
}

export const earliest = (...times: (number | undefined)[]): number | undefined => {
  let min: number | undefined;
  for (const time of times) if (time !== undefined && (min === undefined || time < min)) min = time;
  return min;
};

/** Positional placeholders for statements built from optional parts (filters). */
export class Params {
  readonly values: unknown[] = [];
  add(value: unknown): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }
}

/** What every area of the PostgreSQL store shares: the pool, transactions, and the work notifier. */
export interface Pg {
  readonly sql: Client;
  readonly notifier: WorkNotifier;
  /** The NOTIFY channel nodes on this schema wake each other on. */
  readonly channel: string;
  /** Tells the nodes on this schema of stream appends (on `streamChannel`). */
  readonly streamNotifier: StreamNotifier;
  readonly streamChannel: string;
  /** True once close() began: the listening connection is gone with the pool. */
  readonly closed: boolean;
  /** Runs `work` again when PostgreSQL broke a deadlock by failing it (40P01). */
  retrying<T>(work: () => Promise<T>): Promise<T>;
  /** One transaction, not retried: for callers that retry around more than it. */
  begin<T>(work: (tx: Db) => Promise<T>): Promise<T>;
  /** One transaction, run again if it lost a deadlock. */
  transaction<T>(work: (tx: Db) => Promise<T>): Promise<T>;
}
