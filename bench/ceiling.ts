/**
 * The nats.js ceiling: the same work as the publish and fire-and-forget
 * consume scenarios, written against nats.js's public core API alone (no
 * `@nats-io/jetstream`, no windshift), with nothing a library would add: no
 * headers, no per-message timers, no parsing of publish acks. It is the most
 * throughput nats.js allows for this work; windshift ÷ ceiling says how much
 * of it windshift keeps.
 *
 * @module
 */
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { createInbox, type Msg, type NatsConnection } from "@nats-io/nats-core";
import { TestEventSchema } from "../gen/windshift/test/v1/events_pb.js";
import { type Ceiling, type CeilingRound, eventData } from "./drivers.js";

/**
 * The ceilings' pull batch (the nats.js ceiling's `batch`, the C client's
 * `natsSubscription_Fetch`), whatever `--pull` says: as much as the bench's
 * consumers let out unacknowledged (their `max_ack_pending` is 1,000 or the
 * pull batch, whichever is larger).
 */
export const CEILING_PULL_BATCH = 1_000;

/** A ceiling round that takes longer than this fails (a lost ack or pull would otherwise hang the bench). */
export const CEILING_ROUND_TIMEOUT_MS = 120_000;

const ACK = new TextEncoder().encode("+ACK");

/** Keeps decoded data observable so that nothing is optimised away. */
let sink = 0;
export function ceilingSinkValue(): number {
  return sink;
}

/**
 * Runs `start` with a settle function for its callbacks: `done()` or
 * `done(error)` settles the promise once and runs `cleanup`; the round fails
 * after {@link CEILING_ROUND_TIMEOUT_MS}.
 */
function round(
  what: string,
  start: (done: (error?: Error) => void) => () => void,
  progress: () => string,
): Promise<CeilingRound> {
  return new Promise<CeilingRound>((resolve, reject) => {
    let cleanup: (() => void) | undefined;
    let settled = false;
    const done = (error?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      cleanup?.();
      if (error === undefined) resolve({});
      else reject(error);
    };
    const timer = setTimeout(
      () => done(new Error(`nats.js ceiling ${what}: not done after ${CEILING_ROUND_TIMEOUT_MS} ms (${progress()})`)),
      CEILING_ROUND_TIMEOUT_MS,
    );
    cleanup = start(done);
    if (settled) cleanup();
  });
}

/** The nats.js ceiling on its own connection `nc`. */
export function natsJsCeiling(nc: NatsConnection): Ceiling {
  return {
    variant: "nats.js ceiling",
    external: false,
    /**
     * A JetStream publish as a core publish with a reply subject (the stream
     * answers any message on its subjects that has one): every event to
     * `subject` with reply `<inbox>.<i>`, the acks arriving on one wildcard
     * subscription `<inbox>.*`. Each ack that arrives sends the next event, so
     * `window` are in flight until the end; acks are counted, not parsed (the
     * bench checks afterwards that the stream holds every event).
     */
    publish(subject, count, window, payload) {
      let sent = 0;
      let acked = 0;
      return round(
        "publish",
        (done) => {
          const inbox = createInbox();
          const send = () => {
            const i = sent++;
            const data = toBinary(TestEventSchema, create(TestEventSchema, eventData(i, payload)));
            nc.publish(subject, data, { reply: `${inbox}.${i}` });
          };
          const sub = nc.subscribe(`${inbox}.*`, {
            callback: (err) => {
              if (err !== null) return done(err);
              acked++;
              if (sent < count) send();
              else if (acked === count) done();
            },
          });
          for (let k = Math.min(window, count); k > 0; k--) send();
          return () => sub.unsubscribe();
        },
        () => `${acked} of ${count} acked`,
      );
    },
    /**
     * A pull loop on one inbox: `$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>`
     * requests of {@link CEILING_PULL_BATCH} events (fewer for the last),
     * another as soon as half a batch or less is still to come; each event
     * decoded with protobuf-es and acked with a `+ACK` published to its reply
     * subject. Never asks for more than `count`, so no request is left
     * waiting on the server; the round ends with a flush (the acks have
     * reached the server).
     */
    async drain(stream, consumer, count) {
      let received = 0;
      await round(
        "drain",
        (done) => {
          const inbox = createInbox();
          const next = `$JS.API.CONSUMER.MSG.NEXT.${stream}.${consumer}`;
          let requested = 0;
          const pull = () => {
            const batch = Math.min(CEILING_PULL_BATCH, count - requested);
            if (batch <= 0) return;
            requested += batch;
            nc.publish(next, JSON.stringify({ batch, expires: CEILING_ROUND_TIMEOUT_MS * 1e6 }), { reply: inbox });
          };
          const sub = nc.subscribe(inbox, {
            callback: (err, m: Msg) => {
              if (err !== null) return done(err);
              if (m.reply === undefined || m.reply === "") {
                // A status (408 request expired, 409 consumer deleted, ...): not expected here.
                return done(
                  new Error(`nats.js ceiling drain: pull status ${m.headers?.code} ${m.headers?.description ?? ""}`),
                );
              }
              const event = fromBinary(TestEventSchema, m.data);
              sink ^= event.text.length;
              nc.publish(m.reply, ACK);
              if (++received === count) return done();
              if (requested - received <= CEILING_PULL_BATCH / 2) pull();
            },
          });
          pull();
          return () => sub.unsubscribe();
        },
        () => `${received} of ${count} received`,
      );
      await nc.flush();
      return {};
    },
  };
}
