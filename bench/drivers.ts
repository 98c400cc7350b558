/**
 * The three contestants, behind one interface: hand-written nats.js, windshift
 * with no OpenTelemetry SDK, and windshift with a real SDK; and the ceilings
 * (the best nats.js's core API allows, the C client), which run whole rounds
 * of the scenarios they support.
 *
 * @module
 */
import { create, fromBinary, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import { jetstream } from "@nats-io/jetstream";
import { type NatsConnection, headers as natsHeaders } from "@nats-io/nats-core";
import { createEvents, Headers, handle, type ProcessOptions } from "windshift";
import { type TestEvent, TestEventSchema } from "../gen/windshift/test/v1/events_pb.js";
import type { OtelSdk } from "./otel-sdk.js";

/** The contestants that run every scenario. */
export type DriverVariant = "raw" | "windshift" | "windshift+sdk";
/** The ceilings: only in the scenarios that ask for them (see {@link Ceiling}). */
export type CeilingVariant = "nats.js ceiling" | "C client";
export type VariantName = DriverVariant | CeilingVariant;

/** What `publish` is given: the fields of one test event. */
export type EventData = MessageInitShape<typeof TestEventSchema>;

/** Called with each decoded event as the handler receives it, before the ack. */
export type OnEvent = (event: TestEvent) => void;

/** How `process` runs windshift's processor: handlers at once, and the order kept. */
export type ProcessMode = Pick<ProcessOptions, "concurrency" | "orderBy">;

/** One contestant. */
export interface Driver {
  readonly variant: DriverVariant;
  readonly nc: NatsConnection;
  /** Publishes one event and resolves once the stream has stored it. */
  publish(subject: string, data: EventData): Promise<unknown>;
  /**
   * Reads `count` events through the existing consumer, decoding and acking
   * each in turn (after `onEvent`, if given), then stops. `pending` is the
   * pull batch (raw `max_messages`, windshift `prefetch`).
   */
  drain(
    stream: string,
    consumer: string,
    count: number,
    confirmAcks: boolean,
    pending: number,
    onEvent?: OnEvent,
  ): Promise<void>;
  /**
   * Handles the stream's first `count` events (the consumer starts at its
   * start) through the existing consumer with `events.process` as `mode`
   * says, a handler that takes each decoded and returns (the processor acks),
   * then closes the processor. raw has no processor: it runs `drain`, the
   * loop a processor replaces.
   */
  process(
    stream: string,
    consumer: string,
    count: number,
    confirmAcks: boolean,
    pending: number,
    mode: ProcessMode,
  ): Promise<void>;
}

/**
 * What a ceiling's round reports: the seconds that count for its throughput,
 * when it timed itself (the C client times its work inside its own process).
 */
export interface CeilingRound {
  readonly seconds?: number;
}

/**
 * A ceiling: not a way to use windshift but the most a client allows for the
 * same work, run in the same alternation as the drivers in the scenarios that
 * ask for it (publish with a window in flight, consume with fire-and-forget
 * acks).
 */
export interface Ceiling {
  readonly variant: CeilingVariant;
  /** It runs in another process: no heap figures. */
  readonly external: boolean;
  /** Publishes `count` events of `payload`'s size to `subject`, `window` in flight, and resolves once all are stored. */
  publish(subject: string, count: number, window: number, payload: Payload): Promise<CeilingRound>;
  /**
   * Reads `count` events through the existing consumer, decoding each and
   * acking it fire-and-forget, and resolves once the acks have reached the
   * server.
   */
  drain(stream: string, consumer: string, count: number): Promise<CeilingRound>;
  /**
   * The end-to-end latency round (see the latency scenario): pulls from the
   * existing consumer `pending` at a time, publishes `count` events of
   * `payload`'s size to `subject` at `rate` per second on schedule from the
   * start, each carrying the time of its own publish call, and records for
   * each event the time from that call to its handler (after decoding, before
   * the ack, `confirmAcks` as given). Only the ceilings that have it run in
   * that scenario.
   */
  latency?(
    stream: string,
    consumer: string,
    subject: string,
    count: number,
    rate: number,
    payload: Payload,
    confirmAcks: boolean,
    pending: number,
  ): Promise<CeilingLatencyRound>;
}

/** What a ceiling's latency round reports: its seconds from the first publish to the last event handled, and every event's latency. */
export interface CeilingLatencyRound {
  readonly seconds: number;
  /** Publish call → handler, in milliseconds, one per event. */
  readonly latencies: number[];
}

/** The two encoded event sizes the benchmark uses. */
export const SMALL_PAYLOAD_BYTES = 128;
export const LARGE_PAYLOAD_BYTES = 4_096;

/** An encoded event size, and the blob that makes every event exactly that size. */
export interface Payload {
  /** The encoded size of every event, in bytes. */
  readonly bytes: number;
  /** For titles: "128 B", "4 KiB". */
  readonly label: string;
  readonly blob: Uint8Array;
}

// Fixed-width fields keep every event exactly the same size: a 14-character
// text and a number whose varint is always 4 bytes (2^21 <= n < 2^28).
const NUMBER_BASE = 2 ** 21;
const NUMBER_LIMIT = 2 ** 28;

/**
 * The `i`-th event: the same shape and encoded size for every `i`. `stamp`, if
 * given, is carried in `number` instead of `i` (see {@link stampOf}).
 */
export function eventData(i: number, payload: Payload, stamp?: number): EventData {
  return {
    text: `event-${String(i % 1e8).padStart(8, "0")}`,
    number: BigInt(stamp ?? NUMBER_BASE + (i % 1e6)),
    blob: payload.blob,
  };
}

/**
 * Carries a time (a `performance.now()` at or after `epoch`) in the event's
 * `number` field, in microseconds, without changing its encoded size: it must
 * be less than 266 s after `epoch`.
 */
export function stampOf(now: number, epoch: number): number {
  const stamp = NUMBER_BASE + Math.round((now - epoch) * 1_000);
  if (stamp < NUMBER_BASE || stamp >= NUMBER_LIMIT) throw new Error(`time ${now} out of range for epoch ${epoch}`);
  return stamp;
}

/** The time {@link stampOf} carried, as a `performance.now()` value. */
export function timeOfStamp(number: bigint, epoch: number): number {
  return epoch + (Number(number) - NUMBER_BASE) / 1_000;
}

/** Sizes the blob so that an event encodes to exactly `bytes`; fails if it cannot. */
export function payloadOf(bytes: number): Payload {
  const pattern = new Uint8Array(bytes).map((_, i) => (i * 31 + 7) & 0xff);
  const label = bytes % 1024 === 0 ? `${bytes / 1024} KiB` : `${bytes} B`;
  const size = (blob: Uint8Array) =>
    toBinary(TestEventSchema, create(TestEventSchema, eventData(0, { bytes, label, blob }))).length;
  let length = bytes;
  while (length > 0 && size(pattern.subarray(0, length)) > bytes) length--;
  const blob = pattern.slice(0, length);
  const encoded = size(blob);
  if (encoded !== bytes) throw new Error(`cannot make an event of exactly ${bytes} bytes (got ${encoded})`);
  return { bytes, label, blob };
}

/** Keeps decoded data observable so that nothing is optimised away. */
let sink = 0;
export function sinkValue(): number {
  return sink;
}

/**
 * What a careful hand-written nats.js service does: encode, set the same
 * headers windshift writes (type and time), `js.publish`; `consume()`, decode,
 * `ackAck()` or `ack()`.
 */
export function rawDriver(nc: NatsConnection): Driver {
  const js = jetstream(nc);
  return {
    variant: "raw",
    nc,
    publish(subject, data) {
      const payload = toBinary(TestEventSchema, create(TestEventSchema, data));
      const h = natsHeaders();
      h.set(Headers.DataType, TestEventSchema.typeName);
      h.set(Headers.PublishedTime, new Date().toISOString());
      return js.publish(subject, payload, { headers: h });
    },
    async drain(stream, consumer, count, confirmAcks, pending, onEvent) {
      const c = await js.consumers.get(stream, consumer);
      const messages = await c.consume({ max_messages: pending });
      let n = 0;
      try {
        for await (const m of messages) {
          const event = fromBinary(TestEventSchema, m.data);
          sink ^= event.text.length;
          onEvent?.(event);
          if (confirmAcks) await m.ackAck();
          else m.ack();
          if (++n === count) break;
        }
      } finally {
        messages.stop();
      }
      await nc.flush();
    },
    process(stream, consumer, count, confirmAcks, pending) {
      return this.drain(stream, consumer, count, confirmAcks, pending);
    },
  };
}

/** windshift as a service would use it; with `sdk`, its providers are passed to `createEvents`. */
export function windshiftDriver(nc: NatsConnection, sdk?: OtelSdk): Driver {
  const events = createEvents(
    nc,
    sdk === undefined ? {} : { tracerProvider: sdk.tracerProvider, meterProvider: sdk.meterProvider },
  );
  return {
    variant: sdk === undefined ? "windshift" : "windshift+sdk",
    nc,
    publish(subject, data) {
      return events.publish(subject, TestEventSchema, data);
    },
    async drain(stream, consumer, count, confirmAcks, pending, onEvent) {
      const sub = await events.subscribe(stream, consumer, {
        schema: TestEventSchema,
        prefetch: pending,
        confirmAcks,
      });
      let n = 0;
      try {
        for await (const event of sub) {
          sink ^= event.data.text.length;
          onEvent?.(event.data);
          await event.ack();
          if (++n === count) break;
        }
      } finally {
        await sub.close();
      }
      await nc.flush();
    },
    async process(stream, consumer, count, confirmAcks, pending, mode) {
      let handled = 0;
      let allHandled!: () => void;
      const done = new Promise<void>((resolve) => {
        allHandled = resolve;
      });
      const processor = await events.process(
        stream,
        consumer,
        handle(TestEventSchema, (data, event) => {
          sink ^= data.text.length;
          // Handlers run out of stream order, and with orderBy an earlier event
          // may still wait for its key: done when the first `count` are.
          if (event.id <= count && ++handled === count) allHandled();
        }),
        { ...mode, confirmAcks, maxWaitingEvents: pending },
      );
      try {
        // `closed` resolves with the error if the processor stops by itself.
        const failure = await Promise.race([done, processor.closed]);
        if (failure !== undefined) throw failure;
      } finally {
        // Waits for the acks of the events handled last.
        await processor.close();
      }
      await nc.flush();
    },
  };
}
