/**
 * The PostgreSQL engine: streams, consumers and key-value buckets in tables
 * of one schema (see `sql/postgres/`), for services that already run
 * PostgreSQL and want windshift without a broker. Appends are one statement
 * each; deliveries are claimed with `FOR UPDATE SKIP LOCKED` by feeds that
 * wake on `LISTEN`/`NOTIFY` and poll as a safety net.
 *
 * Where it cannot match JetStream: one database, so no replicas (`replicas`
 * is accepted and echoed) and no sources.
 *
 * @module
 */

import type { Pool } from "pg";
import { ErrorCode, WindshiftError } from "../../errors.js";
import { throwIfAborted } from "../../internal/abort.js";
import { type Clock, realClock } from "../../internal/clock.js";
import type { Logger } from "../../internal/logger.js";
import type {
  Appended,
  AppendOptions,
  ConnectionFacts,
  ConsumerConfig,
  ConsumerState,
  Engine,
  Ensured,
  Feed,
  FeedOptions,
  FeedSink,
  KeyValue,
  KeyValueOpen,
  OutgoingEvent,
  PurgeOptions,
  SettleKind,
  StoredEvent,
  StreamConfig,
  StreamState,
} from "../engine.js";
import { streamNotFound } from "../errors.js";
import { compileMatcher } from "../subjects.js";
import { type Appender, createAppender } from "./append.js";
import * as consumers from "./consumers.js";
import * as contents from "./contents.js";
import { quoted } from "./database.js";
import * as events from "./events.js";
import { PostgresFeed } from "./feed.js";
import { openKeyValue } from "./key-value.js";
import { purgeStream } from "./purge.js";
import { ensureSchema } from "./schema.js";
import { SettlementQueue } from "./settlements.js";
import * as streams from "./streams.js";
import { WakeUps } from "./wake-ups.js";

/** Options of {@link createPostgresEngine}. */
export interface PostgresEngineOptions {
  /** The pool the engine's statements run on. */
  readonly pool: Pool;
  /** The schema of the engine's tables. */
  readonly schema: string;
  /** Apply the shipped migrations before the first call (`ensureSchema`). */
  readonly migrate: boolean;
  /** How often an idle feed claims again without a wake-up. */
  readonly pollIntervalMs: number;
  /** The largest payload one event may have. */
  readonly maxPayloadBytes: number;
  readonly logger: Logger;
  /** Ends the pool when the engine closes (a pool the engine made). */
  readonly ownsPool: boolean;
}

/** Creates the engine over a pool; nothing is sent to PostgreSQL until the first call. */
export function createPostgresEngine(options: PostgresEngineOptions): Engine {
  return new PostgresEngine(options);
}

class PostgresEngine implements Engine {
  readonly clock: Clock = realClock;
  readonly transactions = true;
  readonly db: Pool;
  readonly schema: string;
  readonly logger: Logger;
  readonly pollIntervalMs: number;
  readonly #options: PostgresEngineOptions;
  readonly #connection: ConnectionFacts;
  readonly #appender: Appender;
  readonly #queues = new Map<string, SettlementQueue>();
  readonly #feeds = new Set<PostgresFeed>();
  /** Stream row ids by name, for the feeds a notification wakes (a feed of a stream not in it wakes on every one). */
  readonly #streamIds = new Map<string, number>();
  readonly #wakeUps: WakeUps;
  #ready: Promise<void> | undefined;
  #closed = false;

  constructor(options: PostgresEngineOptions) {
    this.#options = options;
    this.db = options.pool;
    this.schema = options.schema;
    this.logger = options.logger;
    this.pollIntervalMs = options.pollIntervalMs;
    this.#connection = connectionFacts(options.pool);
    this.#appender = createAppender(this.db, { schema: this.schema });
    this.#wakeUps = new WakeUps(this.db, this.schema, this, { logger: this.logger, retryMs: this.pollIntervalMs });
  }

  connection(): ConnectionFacts {
    return this.#connection;
  }

  maxPayload(): number {
    return this.#options.maxPayloadBytes;
  }

  async ensureStream(config: StreamConfig, signal: AbortSignal | undefined): Promise<Ensured<StreamConfig>> {
    await this.#call(signal);
    if (config.sources.length > 0)
      throw unsupported(config.name, "sources", "one database has no other stream to copy from");
    if (config.replicas > 1) {
      throw unsupported(
        config.name,
        "replicas",
        `${config.replicas} replicas need a cluster; PostgreSQL's own replication keeps the one copy safe`,
      );
    }
    return streams.ensureStream(this.db, this.schema, config, signal);
  }

  async streamsCapturing(subject: string, signal: AbortSignal | undefined): Promise<string[]> {
    await this.#call(signal);
    const rows = await streams.loadStreams(this.db, this.schema);
    return rows.filter((row) => compileMatcher(row.config.subjects)(subject)).map((row) => row.config.name);
  }

  async ensureConsumer(
    stream: string,
    config: ConsumerConfig,
    signal: AbortSignal | undefined,
  ): Promise<Ensured<ConsumerConfig> & { readonly name: string }> {
    await this.#call(signal);
    return consumers.ensureConsumer(this.db, this.schema, stream, config, signal);
  }

  async consumerState(stream: string, consumer: string, signal: AbortSignal | undefined): Promise<ConsumerState> {
    await this.#call(signal);
    return consumers.consumerState(this.db, this.schema, stream, consumer, signal);
  }

  async listConsumers(stream: string, signal: AbortSignal | undefined): Promise<ConsumerState[]> {
    await this.#call(signal);
    return consumers.listConsumers(this.db, this.schema, stream, signal);
  }

  async deleteConsumer(stream: string, consumer: string, signal: AbortSignal | undefined): Promise<void> {
    await this.#call(signal);
    await consumers.deleteConsumer(this.db, this.schema, stream, consumer, signal);
    this.#queues.delete(queueKey(stream, consumer));
    for (const feed of this.#feeds) if (feed.stream === stream && feed.consumer === consumer) feed.wake();
  }

  async streamState(stream: string, signal: AbortSignal | undefined): Promise<StreamState> {
    await this.#call(signal);
    return contents.streamState(this.db, this.schema, stream, signal);
  }

  async listStreams(signal: AbortSignal | undefined): Promise<StreamState[]> {
    await this.#call(signal);
    return contents.streamStates(this.db, this.schema, undefined, signal);
  }

  async deleteStream(stream: string, signal: AbortSignal | undefined): Promise<void> {
    await this.#call(signal);
    if (!(await streams.deleteStream(this.db, this.schema, stream, signal))) {
      throw streamNotFound(stream, { deleting: true });
    }
    this.#streamIds.delete(stream);
    for (const feed of this.#feeds) if (feed.stream === stream) feed.wake();
  }

  async purgeStream(stream: string, options: PurgeOptions, signal: AbortSignal | undefined): Promise<number> {
    await this.#call(signal);
    return purgeStream(this.db, this.schema, stream, options, signal);
  }

  async getEvent(
    stream: string,
    which: { readonly id: number } | { readonly lastOn: string },
    signal: AbortSignal | undefined,
  ): Promise<StoredEvent> {
    await this.#call(signal);
    return events.getEvent(this.db, this.schema, stream, which, signal);
  }

  async append(event: OutgoingEvent, options: AppendOptions): Promise<Appended> {
    await this.#call(options.signal);
    return this.#appender.append(event, options);
  }

  consume(stream: string, consumer: string, sink: FeedSink, options: FeedOptions): Feed {
    if (this.#closed) throw closedError("consume");
    const feed = new PostgresFeed(this, stream, consumer, sink, options.limit);
    this.#feeds.add(feed);
    this.#wakeUps.start();
    void this.#ensureReady().then(
      () => {
        feed.wake();
        void this.#learnStreamId(stream);
      },
      (err: unknown) => sink.fail(err as WindshiftError),
    );
    return feed;
  }

  async *read(
    stream: string,
    options: { readonly subject?: string; readonly signal?: AbortSignal },
  ): AsyncGenerator<StoredEvent> {
    await this.#call(options.signal);
    for await (const event of events.readEvents(this.db, this.schema, stream, options)) {
      if (this.#closed) throw closedError(`read("${stream}")`);
      yield event;
    }
  }

  async deleteEvent(stream: string, id: number, signal: AbortSignal | undefined): Promise<void> {
    await this.#call(signal);
    await events.deleteEvent(this.db, this.schema, stream, id, signal);
  }

  async keyValue(bucket: string, how: KeyValueOpen, signal: AbortSignal | undefined): Promise<KeyValue> {
    await this.#call(signal);
    return openKeyValue(this.db, this.schema, bucket, how, signal, { isClosed: () => this.#closed });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const feed of [...this.#feeds]) feed.closed();
    await Promise.all([...this.#queues.values()].map((q) => q.flush().catch(() => {})));
    await this.#wakeUps.close();
    if (this.#options.ownsPool) await this.db.end();
  }

  // What feeds, settlement queues and the listener call.

  isClosed(): boolean {
    return this.#closed;
  }

  queue(stream: string, consumer: string): SettlementQueue {
    const key = queueKey(stream, consumer);
    let queue = this.#queues.get(key);
    if (queue === undefined) {
      queue = new SettlementQueue(this, stream, consumer);
      this.#queues.set(key, queue);
    }
    return queue;
  }

  feedStopped(feed: PostgresFeed): void {
    this.#feeds.delete(feed);
    const key = queueKey(feed.stream, feed.consumer);
    const queue = this.#queues.get(key);
    const used = [...this.#feeds].some((f) => f.stream === feed.stream && f.consumer === feed.consumer);
    // A queue with settlements on their way is kept until they are sent; then the next settlement makes it again.
    if (!used && queue?.idle === true) this.#queues.delete(key);
  }

  applied(stream: string, consumer: string, batch: readonly { kind: SettleKind; delayMs: number }[]): void {
    // An ack frees room under maxUnsettledEvents; a release or nak makes an event due (now, or after its delay).
    let soonest = Number.POSITIVE_INFINITY;
    let freed = false;
    for (const { kind, delayMs } of batch) {
      if (kind === "ack" || kind === "term") freed = true;
      else if (kind === "nak" || kind === "release") soonest = Math.min(soonest, delayMs);
    }
    for (const feed of this.#feeds) {
      if (feed.stream !== stream || feed.consumer !== consumer) continue;
      if (freed || soonest <= 0) feed.wake();
      else if (Number.isFinite(soonest)) feed.wakeIn(soonest);
    }
  }

  stored(streamId: number): void {
    for (const feed of this.#feeds) {
      const id = this.#streamIds.get(feed.stream);
      if (id === undefined || id === streamId) feed.wake();
    }
  }

  listening(): void {
    // Events stored before the LISTEN took effect (a feed's first claim races it; a reconnect left a gap)
    // are found now rather than at the next poll.
    for (const feed of this.#feeds) feed.wake();
  }

  /** Learns the row id of a stream with feeds, so that only its feeds wake when it is appended to. */
  async #learnStreamId(stream: string): Promise<void> {
    if (this.#streamIds.has(stream)) return;
    try {
      const found = await this.db.query<{ id: number }>(
        `SELECT id FROM ${quoted(this.schema)}.streams WHERE name = $1`,
        [stream],
      );
      const id = found.rows[0]?.id;
      if (id !== undefined) this.#streamIds.set(stream, id);
    } catch {
      // Its feeds wake on every notification meanwhile.
    }
  }

  /** Throws when closed or aborted; applies the schema's migrations first, when asked to. */
  async #call(signal: AbortSignal | undefined): Promise<void> {
    if (this.#closed) throw closedError("the call");
    throwIfAborted(signal);
    await this.#ensureReady();
  }

  #ensureReady(): Promise<void> {
    if (!this.#options.migrate) return Promise.resolve();
    this.#ready ??= ensureSchema(this.db, { schema: this.schema }).then(
      () => {},
      (err: unknown) => {
        this.#ready = undefined;
        throw err;
      },
    );
    return this.#ready;
  }
}

function queueKey(stream: string, consumer: string): string {
  return `${stream}\u0000${consumer}`;
}

function closedError(what: string): WindshiftError {
  return new WindshiftError(
    ErrorCode.Closed,
    `${what}: the PostgreSQL engine is closed; create another client to go on`,
  );
}

/** `SERVER`, as a single nats-server refuses what needs a cluster: the PostgreSQL engine cannot have `option`. */
function unsupported(stream: string, option: string, why: string): WindshiftError {
  return new WindshiftError(
    ErrorCode.Server,
    `stream "${stream}": the PostgreSQL engine does not support ${option} (${why}); use JetStream for ${option}`,
    { details: { stream, option } },
  );
}

/** Where the pool connects, for telemetry: its host and port, or those of its connection string. */
function connectionFacts(pool: Pool): ConnectionFacts {
  const { host, port, connectionString } = pool.options;
  let address = typeof host === "string" ? host : undefined;
  let serverPort = typeof port === "number" ? port : undefined;
  if (address === undefined && typeof connectionString === "string") {
    try {
      const url = new URL(connectionString);
      address = url.hostname === "" ? undefined : url.hostname;
      serverPort = url.port === "" ? 5432 : Number(url.port);
    } catch {
      // Not a URL (key=value pairs): the facts stay unknown.
    }
  }
  // A Unix socket directory is not an address.
  if (address?.startsWith("/")) address = undefined;
  return Object.freeze({
    system: "postgresql",
    ...(address === undefined ? {} : { serverAddress: address }),
    ...(address === undefined || serverPort === undefined ? {} : { serverPort }),
  });
}
