/**
 * The seam between what windshift promises and the engine that stores and
 * delivers events.
 *
 * Everything above `engines/` (the client, publishing, subscriptions and
 * their settlement, processing, dead letters, idempotency, telemetry) talks
 * to an {@link Engine} and nothing else: it never imports nats.js. An engine
 * stores events in streams, keeps consumers' positions, hands deliveries to a
 * {@link FeedSink} and settles them, and keeps key-value buckets. Every engine
 * passes the same conformance suite (`test/conformance/`).
 *
 * Engines report failures as `WindshiftError`s with the codes the public API
 * documents: the JetStream engine maps nats.js errors in one place, the
 * memory engine raises the same codes itself, and both word what they share
 * (a missing stream, a failed expected-id check, …) with `errors.ts`.
 *
 * @module
 */

import type { Clock } from "../internal/clock.js";
import type { RawHeaders } from "../internal/headers.js";
import type { Feed, FeedOptions, FeedSink } from "./delivery.js";

import type { KeyValue, KeyValueOpen } from "./key-value.js";

export type { HeaderMap, RawHeaders } from "../internal/headers.js";
export type { KeyValue, KeyValueEntry, KeyValueOpen, KeyValueOptions, KeyValueWriteOptions } from "./key-value.js";

/** Where a consumer starts, or a stream starts copying a source. */
export type Position =
  | { readonly kind: "start" }
  | { readonly kind: "end" }
  | { readonly kind: "id"; readonly id: number }
  | { readonly kind: "time"; readonly time: Date };

/** A stream's source, resolved. */
export interface SourceConfig {
  readonly stream: string;
  /** Never `end`. */
  readonly from: Position;
  /** Copy only these subjects; empty for all. */
  readonly subjects: readonly string[];
}

/**
 * A stream's whole configuration, every option resolved (`undefined` means
 * unlimited). `ensureStream` makes the stream exactly this.
 */
export interface StreamConfig {
  readonly name: string;
  readonly subjects: readonly string[];
  readonly maxAgeMs: number | undefined;
  readonly maxEvents: number | undefined;
  readonly maxEventsPerSubject: number | undefined;
  readonly maxBytes: number | undefined;
  readonly maxEventSize: number | undefined;
  readonly discardPolicy: "old" | "new";
  readonly discardNewPerSubject: boolean;
  readonly storage: "file" | "memory";
  readonly replicas: number;
  readonly deduplicationWindowMs: number;
  readonly sources: readonly SourceConfig[];
}

/** A consumer's whole configuration, every option resolved. */
export interface ConsumerConfig {
  /** The durable name; `undefined` for an ephemeral consumer, which the engine names. */
  readonly name: string | undefined;
  /** Deliver only events on these subjects; empty for all. */
  readonly subjects: readonly string[];
  /** Where a new consumer starts; an existing durable keeps its position. */
  readonly from: Position;
  readonly processingTimeoutMs: number;
  readonly maxDeliveryAttempts: number | undefined;
  /** Removed after this long without a subscriber; `undefined` for never. */
  readonly inactiveThresholdMs: number | undefined;
  /** Delivered and not yet settled, across all subscribers (JetStream's max ack pending). */
  readonly maxUnsettledEvents: number;
}

/** A consumer as the engine has it. */
export interface ConsumerState {
  readonly stream: string;
  readonly name: string;
  readonly config: ConsumerConfig;
  /** Every event up to this id is settled (0: none yet). */
  readonly ackFloor: number;
  /** Events delivered and not settled yet (JetStream's ack pending). */
  readonly unsettled: number;
  /** Events for this consumer not delivered yet (its lag). */
  readonly pending: number;
  /** Unsettled events delivered more than once (JetStream's num_redelivered). */
  readonly redelivered: number;
  /**
   * The consumer's position: the id of the last event delivered, or of the
   * last event it started after (JetStream's delivered stream sequence).
   */
  readonly lastDeliveredId: number;
}

/** What a stream holds now. Times are epoch milliseconds. */
export interface StreamContents {
  readonly events: number;
  /** Bytes stored, as the engine counts them (payloads, headers and subjects). */
  readonly bytes: number;
  /** The first event's id; the next id to be given when the stream is empty. */
  readonly firstId: number;
  readonly firstTime: number | undefined;
  /** The last event's id (0 when nothing was ever stored). */
  readonly lastId: number;
  readonly lastTime: number | undefined;
  /** Distinct subjects with events. */
  readonly subjects: number;
  readonly consumers: number;
}

/** A stream as the engine has it. */
export interface StreamState {
  readonly config: StreamConfig;
  readonly contents: StreamContents;
}

/** Which events a purge removes: all, those on `subject`, those below `upToId`, all but the `keepLast` newest. */
export interface PurgeOptions {
  readonly subject: string | undefined;
  /** Keep this many of the newest (on `subject`, when given). */
  readonly keepLast: number | undefined;
  /** Remove events with ids below this. */
  readonly upToId: number | undefined;
}

/** What `ensureStream` / `ensureConsumer` did. */
export interface Ensured<C> {
  /** The configuration as the engine now has it. */
  readonly config: C;
  readonly created: boolean;
}

/** One event to store. */
export interface OutgoingEvent {
  readonly subject: string;
  readonly payload: Uint8Array;
  /**
   * The event's headers, without the idempotency key and the checks below:
   * the engine stores those itself, as `Nats-Msg-Id` and
   * `Nats-Expected-Last-Sequence` / `-Subject-Sequence`, so that every engine
   * delivers the same headers.
   */
  readonly headers: RawHeaders;
  /** Deduplication key: within the stream's window a second event with it is not stored. */
  readonly idempotencyKey: string | undefined;
  /** Store only if the stream's last id is this (0: empty); else `WRONG_SEQUENCE`. */
  readonly expectedLastId: number | undefined;
  /** Store only if the subject's last id is this (0: none); else `WRONG_SEQUENCE`. */
  readonly expectedLastSubjectId: number | undefined;
}

/** How one append attempt is bounded, and where it goes. */
export interface AppendOptions {
  readonly timeoutMs: number;
  readonly signal: AbortSignal | undefined;
  /**
   * The caller's open database transaction to store the event in, on an
   * engine with {@link Engine.transactions}; never given to another.
   */
  readonly transaction?: object;
}

/** Where an event was stored. */
export interface Appended {
  readonly id: number;
  readonly stream: string;
  /** The idempotency key was seen: `id` is the first event's. */
  readonly duplicate: boolean;
}

/** A stored event, read back (not a delivery: it has no settlement). */
export interface StoredEvent {
  readonly id: number;
  readonly subject: string;
  readonly payload: Uint8Array;
  readonly headers: RawHeaders;
  /** When the stream stored it (epoch milliseconds). */
  readonly time: number;
}

export type { DeliveryFacts, Feed, FeedOptions, FeedSink, FeedStatus, SettleKind } from "./delivery.js";
export { Delivery } from "./delivery.js";

/** What telemetry reports about where events go. */
export interface ConnectionFacts {
  /** `messaging.system`. */
  readonly system: string;
  readonly clientId?: string;
  readonly serverAddress?: string;
  readonly serverPort?: number;
}

/**
 * A storage and delivery engine. Methods validate nothing the layer above
 * validates already (names, subjects, option ranges); they check what only
 * the engine knows (subjects owned by another stream, server versions).
 */
export interface Engine {
  /** The clock timers above the engine run on too. */
  readonly clock: Clock;
  /** Connection facts for telemetry; the same object until they change. */
  connection(): ConnectionFacts;
  /** The largest payload one event may have, when the engine has a limit. */
  maxPayload(): number | undefined;
  /**
   * Whether `append` can store an event inside the caller's database
   * transaction (`AppendOptions.transaction`): the PostgreSQL engine's.
   */
  readonly transactions: boolean;

  /** Creates the stream, or updates it to exactly `config`. */
  ensureStream(config: StreamConfig, signal: AbortSignal | undefined): Promise<Ensured<StreamConfig>>;
  /** Names of the streams that capture `subject` (at most one). */
  streamsCapturing(subject: string, signal: AbortSignal | undefined): Promise<string[]>;
  /**
   * Creates a consumer on `stream`, or updates the durable one named in
   * `config` to exactly `config` (keeping its position).
   */
  ensureConsumer(
    stream: string,
    config: ConsumerConfig,
    signal: AbortSignal | undefined,
  ): Promise<Ensured<ConsumerConfig> & { readonly name: string }>;
  /** The consumer's configuration and progress; `NOT_FOUND` when it (or its stream) is missing. */
  consumerState(stream: string, consumer: string, signal: AbortSignal | undefined): Promise<ConsumerState>;
  /** Every consumer of `stream`, by name; `NOT_FOUND` when the stream is missing. */
  listConsumers(stream: string, signal: AbortSignal | undefined): Promise<ConsumerState[]>;
  /** Removes a consumer; its subscribers end with `NOT_FOUND`. `NOT_FOUND` when it is missing. */
  deleteConsumer(stream: string, consumer: string, signal: AbortSignal | undefined): Promise<void>;

  /** The stream's configuration and contents; `NOT_FOUND` when it is missing. */
  streamState(stream: string, signal: AbortSignal | undefined): Promise<StreamState>;
  /** Every stream, by name. */
  listStreams(signal: AbortSignal | undefined): Promise<StreamState[]>;
  /** Removes a stream, its events and its consumers; `NOT_FOUND` when it is missing. */
  deleteStream(stream: string, signal: AbortSignal | undefined): Promise<void>;
  /** Removes events from a stream; returns how many. `NOT_FOUND` when it is missing. */
  purgeStream(stream: string, options: PurgeOptions, signal: AbortSignal | undefined): Promise<number>;
  /**
   * One stored event: by id, or the last one on a subject (no wildcards).
   * `NOT_FOUND` when there is none (or the stream is missing).
   */
  getEvent(
    stream: string,
    which: { readonly id: number } | { readonly lastOn: string },
    signal: AbortSignal | undefined,
  ): Promise<StoredEvent>;

  /**
   * One attempt to store an event in the stream capturing its subject:
   * `UNBOUND_SUBJECT` when none does, `UNAVAILABLE` when it cannot answer
   * now, `PUBLISH_TIMEOUT` when the outcome is unknown, `WRONG_SEQUENCE` when
   * a check fails, `SERVER` when the stream refuses it (a limit, say).
   */
  append(event: OutgoingEvent, options: AppendOptions): Promise<Appended>;

  /** Starts delivering `consumer`'s events to `sink`. */
  consume(stream: string, consumer: string, sink: FeedSink, options: FeedOptions): Feed;

  /**
   * The events in `stream` when the call starts (on `subject`, when given),
   * oldest first; events stored later are not included.
   */
  read(
    stream: string,
    options: { readonly subject?: string; readonly signal?: AbortSignal },
  ): AsyncIterable<StoredEvent>;
  /** Removes one event from `stream`. */
  deleteEvent(stream: string, id: number, signal: AbortSignal | undefined): Promise<void>;

  /** Opens the bucket as `how` says (creating or updating it). */
  keyValue(bucket: string, how: KeyValueOpen, signal: AbortSignal | undefined): Promise<KeyValue>;

  /** Releases what the engine holds (timers, inboxes); not the user's connection. */
  close(): Promise<void>;
}
