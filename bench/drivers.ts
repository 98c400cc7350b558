/**
 * The three contestants, behind one interface: hand-written nats.js, windshift
 * with no OpenTelemetry SDK, and windshift with a real SDK.
 *
 * @module
 */
import { create, fromBinary, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import { jetstream } from "@nats-io/jetstream";
import { type NatsConnection, headers as natsHeaders } from "@nats-io/nats-core";
import { createEvents, Headers } from "windshift";
import { TestEventSchema } from "../gen/windshift/test/v1/events_pb.js";
import type { OtelSdk } from "./otel-sdk.js";

export type VariantName = "raw" | "windshift" | "windshift+sdk";

/** One contestant. */
export interface Driver {
  readonly variant: VariantName;
  readonly nc: NatsConnection;
  /** Publishes the `i`-th event and resolves once the stream has stored it. */
  publish(subject: string, i: number): Promise<unknown>;
  /**
   * Reads `count` events through the existing consumer, decoding and acking
   * each in turn, then stops. `pending` is the pull batch (raw `max_messages`,
   * windshift `maxPendingEvents`).
   */
  drain(stream: string, consumer: string, count: number, confirmAcks: boolean, pending: number): Promise<void>;
}

/** The encoded size the benchmark aims for. */
export const PAYLOAD_BYTES = 128;

// Fixed-width fields keep every event exactly the same size: a 14-character
// text and a number whose varint is always 4 bytes (2^21 <= n < 2^28).
const NUMBER_BASE = 2 ** 21;
const blob = new Uint8Array(PAYLOAD_BYTES).map((_, i) => (i * 31 + 7) & 0xff);
let blobLength = PAYLOAD_BYTES;

/** The `i`-th event: the same shape and encoded size for every `i`. */
export function eventData(i: number): MessageInitShape<typeof TestEventSchema> {
  return {
    text: `event-${String(i % 1e8).padStart(8, "0")}`,
    number: BigInt(NUMBER_BASE + (i % 1e6)),
    blob: blob.subarray(0, blobLength),
  };
}

/** Sizes the blob so that an event encodes to exactly {@link PAYLOAD_BYTES}; returns the size. */
export function calibratePayload(): number {
  blobLength = PAYLOAD_BYTES;
  const size = () => toBinary(TestEventSchema, create(TestEventSchema, eventData(0))).length;
  while (size() > PAYLOAD_BYTES && blobLength > 0) blobLength--;
  return size();
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
    publish(subject, i) {
      const payload = toBinary(TestEventSchema, create(TestEventSchema, eventData(i)));
      const h = natsHeaders();
      h.set(Headers.DataType, TestEventSchema.typeName);
      h.set(Headers.PublishedTime, new Date().toISOString());
      return js.publish(subject, payload, { headers: h });
    },
    async drain(stream, consumer, count, confirmAcks, pending) {
      const c = await js.consumers.get(stream, consumer);
      const messages = await c.consume({ max_messages: pending });
      let n = 0;
      try {
        for await (const m of messages) {
          const event = fromBinary(TestEventSchema, m.data);
          sink ^= event.text.length;
          if (confirmAcks) await m.ackAck();
          else m.ack();
          if (++n === count) break;
        }
      } finally {
        messages.stop();
      }
      await nc.flush();
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
    publish(subject, i) {
      return events.publish(subject, TestEventSchema, eventData(i));
    },
    async drain(stream, consumer, count, confirmAcks, pending) {
      const sub = await events.subscribe(stream, consumer, {
        schema: TestEventSchema,
        maxPendingEvents: pending,
        confirmAcks,
      });
      let n = 0;
      try {
        for await (const event of sub) {
          sink ^= event.data.text.length;
          await event.ack();
          if (++n === count) break;
        }
      } finally {
        await sub.close();
      }
      await nc.flush();
    },
  };
}
