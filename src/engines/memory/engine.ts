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

import type { WindshiftError } from "../../errors.js";
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
  PurgeOptions,
  StoredEvent,
  StreamConfig,
  StreamState,
} from "../engine.js";
import {
  bucketNotFound,
  consumerNotFound,
  eventNotFound,
  filterOutside,
  filterRefused,
  streamNotFound,
  unboundSubject,
} from "../errors.js";
import type { ConsumerHost } from "./consumer.js";
import { ConsumerRegistry } from "./consumer-registry.js";
import type { StoredRecord } from "./event-log.js";
import { checkCall, closedError } from "./failures.js";
import { MemoryFeed } from "./feed.js";
import { MemoryBucket } from "./key-value.js";
import { purge } from "./purge.js";
import type { MemoryStream } from "./stream.js";
import { StreamCatalog } from "./stream-catalog.js";

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
  readonly transactions = false;
  readonly #maxPayload: number;
  readonly #streams: StreamCatalog;
  readonly #consumers: ConsumerRegistry;
  readonly #buckets = new Map<string, MemoryBucket>();
  readonly #host: ConsumerHost;
  #closed = false;

  constructor(clock: Clock, maxPayload: number) {
    this.clock = clock;
    this.#maxPayload = maxPayload;
    this.#streams = new StreamCatalog(clock, maxPayload);
    this.#host = { clock, isClosed: () => this.#closed };
    this.#consumers = new ConsumerRegistry(this.#host);
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
    const existing = config.name === undefined ? undefined : this.#consumers.get(stream, config.name);
    if (existing !== undefined) {
      existing.update(config);
      return { config: existing.config, created: false, name: existing.name };
    }
    const consumer = this.#consumers.create(target, config);
    return { config: consumer.config, created: true, name: consumer.name };
  }

  async consumerState(stream: string, consumer: string, signal: AbortSignal | undefined): Promise<ConsumerState> {
    checkCall(this.#closed, signal);
    const target = this.#stream(stream, { consumer });
    const found = this.#consumers.get(stream, consumer);
    if (found === undefined) throw consumerNotFound(stream, consumer);
    target.expire(this.clock.now());
    return found.state();
  }

  async listConsumers(stream: string, signal: AbortSignal | undefined): Promise<ConsumerState[]> {
    checkCall(this.#closed, signal);
    this.#stream(stream).expire(this.clock.now());
    return this.#consumers.list(stream).map((consumer) => consumer.state());
  }

  async deleteConsumer(stream: string, consumer: string, signal: AbortSignal | undefined): Promise<void> {
    checkCall(this.#closed, signal);
    this.#stream(stream, { consumer, deleting: true });
    if (!this.#consumers.delete(stream, consumer)) throw consumerNotFound(stream, consumer, { deleting: true });
  }

  async streamState(stream: string, signal: AbortSignal | undefined): Promise<StreamState> {
    checkCall(this.#closed, signal);
    return this.#state(this.#stream(stream));
  }

  async listStreams(signal: AbortSignal | undefined): Promise<StreamState[]> {
    checkCall(this.#closed, signal);
    return this.#streams.list().map((stream) => this.#state(stream));
  }

  /** Its consumers' feeds fail with `NOT_FOUND`; appends to its subjects fail with `UNBOUND_SUBJECT`. */
  async deleteStream(stream: string, signal: AbortSignal | undefined): Promise<void> {
    checkCall(this.#closed, signal);
    if (!this.#streams.remove(stream)) throw streamNotFound(stream, { deleting: true });
    this.#consumers.deleteAll(stream);
  }

  /** As nats-server purges (see {@link purge}). */
  async purgeStream(stream: string, options: PurgeOptions, signal: AbortSignal | undefined): Promise<number> {
    checkCall(this.#closed, signal);
    const target = this.#stream(stream);
    target.expire(this.clock.now());
    return purge(target, this.#consumers.list(stream), options);
  }

  async getEvent(
    stream: string,
    which: { readonly id: number } | { readonly lastOn: string },
    signal: AbortSignal | undefined,
  ): Promise<StoredEvent> {
    checkCall(this.#closed, signal);
    const target = this.#stream(stream);
    target.expire(this.clock.now());
    const record = "id" in which ? target.get(which.id) : target.lastOn(which.lastOn);
    if (record !== undefined) return storedEvent(record);
    throw eventNotFound(stream, which);
  }

  /** Stores at once: `timeoutMs` is never reached. */
  async append(event: OutgoingEvent, options: AppendOptions): Promise<Appended> {
    checkCall(this.#closed, options.signal);
    const stream = this.#streams.capturing(event.subject);
    if (stream === undefined) throw unboundSubject(event.subject);
    return stream.append(event, this.clock.now());
  }

  consume(stream: string, consumer: string, sink: FeedSink, options: FeedOptions): Feed {
    if (this.#closed) throw closedError();
    const found = this.#streams.get(stream) === undefined ? undefined : this.#consumers.get(stream, consumer);
    if (found !== undefined) return found.attach(sink, options.limit);
    const feed = new MemoryFeed(sink, options.limit, undefined);
    const error =
      this.#streams.get(stream) === undefined
        ? streamNotFound(stream, { consumer })
        : consumerNotFound(stream, consumer);
    feed.end((s) => s.fail(error));
    return feed;
  }

  read(
    stream: string,
    options: { readonly subject?: string; readonly signal?: AbortSignal },
  ): AsyncIterable<StoredEvent> {
    // The bounds are taken now, so that events stored after the call are left out.
    const target = this.#closed ? undefined : this.#streams.get(stream);
    if (target === undefined) return failing(this.#closed ? closedError() : streamNotFound(stream));
    target.expire(this.clock.now());
    const { subject, signal } = options;
    const ids = subject === undefined ? range(target.firstId(), target.lastId) : target.idsMatching(subject);
    return this.#readIds(target, ids, signal);
  }

  async deleteEvent(stream: string, id: number, signal: AbortSignal | undefined): Promise<void> {
    checkCall(this.#closed, signal);
    const target = this.#stream(stream);
    target.expire(this.clock.now());
    if (!target.delete(id)) throw eventNotFound(stream, { id });
  }

  async keyValue(bucket: string, how: KeyValueOpen, signal: AbortSignal | undefined): Promise<KeyValue> {
    checkCall(this.#closed, signal);
    const found = this.#buckets.get(bucket);
    if (how.mode === "open") {
      if (found === undefined) throw bucketNotFound(bucket);
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
    this.#consumers.close();
    this.#streams.close();
  }

  /** The stream named `name`; `NOT_FOUND` naming the fix (`missing` says what the call was about). */
  #stream(name: string, missing?: { readonly consumer?: string; readonly deleting?: boolean }): MemoryStream {
    const stream = this.#streams.get(name);
    if (stream === undefined) throw streamNotFound(name, missing);
    return stream;
  }

  /** The stream's config and contents, once expired by now. */
  #state(stream: MemoryStream): StreamState {
    stream.expire(this.clock.now());
    const consumers = this.#consumers.list(stream.name).length;
    return { config: stream.config, contents: { ...stream.contents(), consumers } };
  }

  async *#readIds(
    stream: MemoryStream,
    ids: Iterable<number>,
    signal: AbortSignal | undefined,
  ): AsyncGenerator<StoredEvent> {
    checkCall(this.#closed, signal);
    for (const id of ids) {
      checkCall(this.#closed, signal);
      // A stream deleted while it is read fails the read, as on the server.
      if (this.#streams.get(stream.name) !== stream) throw streamNotFound(stream.name);
      stream.expire(this.clock.now());
      const record = stream.get(id);
      if (record !== undefined) yield storedEvent(record);
    }
  }
}

/** An event as read back: a new object; the payload is shared, as deliveries share it. */
function storedEvent(record: StoredRecord): StoredEvent {
  const { id, subject, payload, headers, time } = record;
  return { id, subject, payload, headers, time };
}

/**
 * Refuses a filter the stream could never deliver, as nats-server 2.9 does
 * (`consumer filter subject is not a valid subset of the interest
 * subjects`). A stream with sources holds other subjects too: any filter goes.
 */
function checkFilters(stream: MemoryStream, filters: readonly string[]): void {
  const { subjects, sources } = stream.config;
  if (sources.length > 0) return;
  const outside = filterOutside(filters, subjects);
  if (outside !== undefined) throw filterRefused(stream.name, outside, subjects);
}

/** A read that fails on its first step, as a read of a missing stream does. */
function failing(error: WindshiftError): AsyncIterable<StoredEvent> {
  return { [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(error) }) };
}

function* range(first: number, last: number): Generator<number> {
  for (let id = first; id <= last; id++) yield id;
}
