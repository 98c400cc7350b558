/**
 * The in-memory engine: streams, consumers and key-value buckets held in the
 * process, on a clock the caller gives (a test clock in users' unit tests).
 * It mirrors JetStream as users see it through windshift; where it knowingly
 * differs, the difference is documented where it is made.
 *
 * Not clustered: `replicas` is accepted and echoed, nothing is replicated.
 *
 * @module
 */

import { randomInt } from "node:crypto";
import { ErrorCode, WindshiftError } from "../../errors.js";
import type { Clock } from "../../internal/clock.js";
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
  StoredEvent,
  StreamConfig,
} from "../engine.js";
import { type ConsumerHost, MemoryConsumer } from "./consumer.js";
import { checkCall, closedError, notFound, refused } from "./failures.js";
import { MemoryFeed } from "./feed.js";
import { MemoryBucket } from "./key-value.js";
import type { MemoryStream } from "./stream.js";
import { StreamCatalog } from "./stream-catalog.js";
import { compileMatcher, hasWildcard, isSubsetOf } from "./subjects.js";

/** Options of {@link createMemoryEngine}. */
export interface MemoryEngineOptions {
  /** The clock events are stored, expired and redelivered by; a test clock lets tests move time. */
  readonly clock: Clock;
  /**
   * The largest payload one event may have, as a server's `max_payload`.
   * @default 1_048_576 (nats-server's default)
   */
  readonly maxPayloadBytes?: number;
}

const MEMORY_ENGINE_DEFAULTS = Object.freeze({ maxPayloadBytes: 1_048_576 });

const CONNECTION: ConnectionFacts = Object.freeze({ system: "memory" });

const NAME_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const NAME_LENGTH = 8;

/**
 * Creates an engine that keeps everything in memory, for unit tests and
 * single-process use. Timers run on `options.clock`.
 *
 * @example
 * ```ts
 * const clock = createTestClock();
 * const engine = createMemoryEngine({ clock });
 * // … redeliveries after a 30 s processing timeout:
 * await clock.advance(30_000);
 * ```
 */
export function createMemoryEngine(options: MemoryEngineOptions): Engine {
  const { maxPayloadBytes = MEMORY_ENGINE_DEFAULTS.maxPayloadBytes } = options;
  return new MemoryEngine(options.clock, maxPayloadBytes);
}

class MemoryEngine implements Engine {
  readonly clock: Clock;
  readonly #maxPayload: number;
  readonly #streams: StreamCatalog;
  /** Consumers by stream name, then consumer name. */
  readonly #consumers = new Map<string, Map<string, MemoryConsumer>>();
  readonly #buckets = new Map<string, MemoryBucket>();
  readonly #host: ConsumerHost;
  #closed = false;

  constructor(clock: Clock, maxPayload: number) {
    this.clock = clock;
    this.#maxPayload = maxPayload;
    this.#streams = new StreamCatalog(clock, maxPayload);
    this.#host = { clock, isClosed: () => this.#closed };
  }

  connection(): ConnectionFacts {
    return CONNECTION;
  }

  maxPayload(): number {
    return this.#maxPayload;
  }

  async ensureStream(config: StreamConfig, signal: AbortSignal | undefined): Promise<Ensured<StreamConfig>> {
    checkCall(this.#closed, signal);
    return this.#streams.ensure(config);
  }

  async streamsCapturing(subject: string, signal: AbortSignal | undefined): Promise<string[]> {
    checkCall(this.#closed, signal);
    return this.#streams.namesCapturing(subject);
  }

  async ensureConsumer(
    stream: string,
    config: ConsumerConfig,
    signal: AbortSignal | undefined,
  ): Promise<Ensured<ConsumerConfig> & { readonly name: string }> {
    checkCall(this.#closed, signal);
    const target = this.#stream(stream);
    target.expire(this.clock.now());
    checkFilters(target, config.subjects);
    const existing = config.name === undefined ? undefined : this.#consumer(stream, config.name);
    if (existing !== undefined) {
      existing.update(config);
      return { config: existing.config, created: false, name: existing.name };
    }
    let consumers = this.#consumers.get(stream);
    if (consumers === undefined) {
      consumers = new Map();
      this.#consumers.set(stream, consumers);
    }
    const name = config.name ?? uniqueName(consumers);
    const consumer = new MemoryConsumer(this.#host, target, name, config);
    consumers.set(name, consumer);
    return { config: consumer.config, created: true, name };
  }

  async consumerState(stream: string, consumer: string, signal: AbortSignal | undefined): Promise<ConsumerState> {
    checkCall(this.#closed, signal);
    this.#stream(stream);
    const found = this.#consumer(stream, consumer);
    if (found === undefined) throw notFound("consumer", { stream, consumer });
    this.#stream(stream).expire(this.clock.now());
    return {
      stream,
      name: found.name,
      config: found.config,
      ackFloor: found.ackFloor(),
      unsettled: found.unsettled(),
      pending: found.undelivered(),
    };
  }

  /** Stores at once: `timeoutMs` is never reached. */
  async append(event: OutgoingEvent, options: AppendOptions): Promise<Appended> {
    checkCall(this.#closed, options.signal);
    const stream = this.#streams.capturing(event.subject);
    if (stream === undefined) {
      throw new WindshiftError(ErrorCode.UnboundSubject, `no stream captures subject "${event.subject}"`, {
        details: { subject: event.subject },
      });
    }
    return stream.append(event, this.clock.now());
  }

  consume(stream: string, consumer: string, sink: FeedSink, options: FeedOptions): Feed {
    if (this.#closed) throw closedError();
    const found = this.#streams.get(stream) === undefined ? undefined : this.#consumer(stream, consumer);
    if (found !== undefined) return found.attach(sink, options.limit);
    const feed = new MemoryFeed(sink, options.limit, undefined);
    const what = this.#streams.get(stream) === undefined ? "stream" : "consumer";
    feed.end((s) => s.fail(notFound(what, { stream, consumer })));
    return feed;
  }

  read(
    stream: string,
    options: { readonly subject?: string; readonly signal?: AbortSignal },
  ): AsyncIterable<StoredEvent> {
    // The bounds are taken now, so that events stored after the call are left out.
    const target = this.#closed ? undefined : this.#streams.get(stream);
    if (target === undefined) return failing(this.#closed ? closedError() : notFound("stream", { stream }));
    target.expire(this.clock.now());
    const { subject, signal } = options;
    if (subject !== undefined && !hasWildcard(subject)) return this.#readIds(target, target.idsOn(subject), signal);
    const filter = subject === undefined ? undefined : compileMatcher([subject]);
    return this.#readIds(target, range(target.firstId(), target.lastId), signal, filter);
  }

  async deleteEvent(stream: string, id: number, signal: AbortSignal | undefined): Promise<void> {
    checkCall(this.#closed, signal);
    const target = this.#stream(stream);
    target.expire(this.clock.now());
    if (!target.delete(id)) throw notFound("event", { stream, id });
  }

  async keyValue(bucket: string, how: KeyValueOpen, signal: AbortSignal | undefined): Promise<KeyValue> {
    checkCall(this.#closed, signal);
    const found = this.#buckets.get(bucket);
    if (how.mode === "open") {
      if (found === undefined) throw notFound("bucket", { bucket });
      return found;
    }
    if (found === undefined) {
      const created = new MemoryBucket(this.#host, bucket, how.options);
      this.#buckets.set(bucket, created);
      return created;
    }
    if (how.mode === "ensure") found.options = Object.freeze({ ...how.options });
    return found;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const consumers of this.#consumers.values()) for (const consumer of consumers.values()) consumer.remove({});
    this.#consumers.clear();
    this.#streams.close();
  }

  #stream(name: string): MemoryStream {
    const stream = this.#streams.get(name);
    if (stream === undefined) throw notFound("stream", { stream: name });
    return stream;
  }

  /** The consumer, unless missing or (lazily) removed for inactivity. */
  #consumer(stream: string, name: string): MemoryConsumer | undefined {
    const consumers = this.#consumers.get(stream);
    const consumer = consumers?.get(name);
    if (consumer === undefined || !consumer.isIdle(this.clock.now())) return consumer;
    consumer.remove({ error: notFound("consumer", { stream, consumer: name }) });
    consumers?.delete(name);
    return undefined;
  }

  async *#readIds(
    stream: MemoryStream,
    ids: Iterable<number>,
    signal: AbortSignal | undefined,
    filter?: (subject: string) => boolean,
  ): AsyncGenerator<StoredEvent> {
    checkCall(this.#closed, signal);
    for (const id of ids) {
      checkCall(this.#closed, signal);
      stream.expire(this.clock.now());
      const record = stream.get(id);
      if (record === undefined || (filter !== undefined && !filter(record.subject))) continue;
      yield { id, subject: record.subject, payload: record.payload, headers: record.headers };
    }
  }
}

/**
 * Refuses a filter the stream could never deliver, as nats-server 2.9 does
 * (`consumer filter subject is not a valid subset of the interest
 * subjects`). A stream with sources holds other subjects too: any filter goes.
 */
function checkFilters(stream: MemoryStream, filters: readonly string[]): void {
  const { subjects, sources } = stream.config;
  if (sources.length > 0) return;
  for (const filter of filters) {
    const wildcard = hasWildcard(filter);
    if (subjects.some((s) => isSubsetOf(filter, s) || (wildcard && isSubsetOf(s, filter)))) continue;
    throw refused(`consumer filter subject "${filter}" is not a valid subset of the interest subjects`, {
      stream: stream.name,
      subject: filter,
    });
  }
}

/** A read that fails on its first step, as a read of a missing stream does. */
function failing(error: WindshiftError): AsyncIterable<StoredEvent> {
  return { [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(error) }) };
}

function* range(first: number, last: number): Generator<number> {
  for (let id = first; id <= last; id++) yield id;
}

/** A fresh ephemeral name: 8 random characters of `[A-Za-z0-9]`. */
function uniqueName(taken: ReadonlyMap<string, unknown>): string {
  for (;;) {
    let name = "";
    for (let i = 0; i < NAME_LENGTH; i++) name += NAME_ALPHABET[randomInt(NAME_ALPHABET.length)];
    if (!taken.has(name)) return name;
  }
}
