/**
 * The in-memory engine, in-process: publish → deliver → handle → ack through
 * the whole `Events` API, no server, on the real clock (the engine's timers
 * never fire in a round: nothing times out). Two loops a user's unit tests
 * run, alternating round by round:
 *
 * - process: `events.process` with one handler, while a producer keeps 256
 *   publishes in flight;
 * - subscribe: a `for await` loop that decodes and acks each event, the
 *   producer the same;
 * - protobuf-es alone: the same events created, encoded and decoded, nothing
 *   else: the part of each loop's time that is not windshift's;
 * - process of a message with `buf.validate` rules, without and with the
 *   client's `validate: true`: what checking the rules (protovalidate, on
 *   publish and in the processor) costs.
 *
 * Reported: events per second (first publish to last event handled), the
 * heap's peak growth during a round per event, and the heap a round leaves
 * behind after a forced GC, per event.
 *
 * @module
 */

import { create, type DescMessage, fromBinary, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import { handle } from "windshift";
import { createMemoryEvents } from "windshift/testing";
import { SignupSchema, TestEventSchema } from "../gen/windshift/test/v1/events_pb.js";
import { type EventData, eventData, type Payload } from "./drivers.js";
import { collectGarbage, heapUsed, median } from "./stats.js";

/** The producer's window: publishes awaiting their outcome at once. */
const IN_FLIGHT = 256;

/** One loop's result. */
export interface MemoryLoopResult {
  readonly id: "process" | "subscribe" | "protobuf" | "process-signup" | "process-validated";
  readonly title: string;
  readonly count: number;
  readonly eventsPerSec: number;
  readonly roundsEventsPerSec: readonly number[];
  /** Median of the rounds' peak heap growth, per event. */
  readonly heapPeakBytesPerEvent: number;
  /** Heap left after an extra round and a forced GC, per event; NaN without --expose-gc. */
  readonly retainedBytesPerEvent: number;
}

/** The memory engine's section of the report. */
export interface MemoryReport {
  readonly payloadBytes: number;
  readonly rounds: number;
  readonly loops: readonly MemoryLoopResult[];
}

type Loop = (count: number, payload: Payload, onRound: () => void) => Promise<void>;

/** Publishes `count` events with a window of {@link IN_FLIGHT}. */
async function produce(publish: (data: EventData) => Promise<unknown>, count: number, payload: Payload): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) await publish(eventData(next++, payload));
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
}

const processLoop: Loop = (count, payload, sample) =>
  processWith({ schema: TestEventSchema, data: (i) => eventData(i, payload), validate: false }, count, sample);

/** A Signup: six buf.validate rules (email, min length, range, list and map-key limits, a CEL rule), all kept. */
function signup(i: number) {
  return { email: `user${i}@example.com`, name: `user ${i}`, age: 30, tags: ["a", "b"], labels: { lang: "en" } };
}

const signupLoop: Loop = (count, _payload, sample) =>
  processWith({ schema: SignupSchema, data: signup, validate: false }, count, sample);

const validatedLoop: Loop = (count, _payload, sample) =>
  processWith({ schema: SignupSchema, data: signup, validate: true }, count, sample);

/** The process loop for messages of `schema`, with the client's `validate` option as given. */
async function processWith<Desc extends DescMessage>(
  of: { schema: Desc; data: (i: number) => MessageInitShape<Desc>; validate: boolean },
  count: number,
  sample: () => void,
): Promise<void> {
  const { schema } = of;
  await using events = createMemoryEvents({ validate: of.validate });
  await events.ensureStream("bench", { subjects: ["bench.>"] });
  await events.ensureConsumer("bench", { name: "worker", from: { start: true }, maxUnsettledEvents: 10_000 });
  let handled = 0;
  let done!: () => void;
  const finished = new Promise<void>((resolve) => {
    done = resolve;
  });
  let sink = 0;
  await using processor = await events.process(
    "bench",
    "worker",
    handle(schema, (data) => {
      sink ^= data.$typeName.length;
      if (++handled % 1_000 === 0) sample();
      if (handled === count) done();
    }),
  );
  let next = 0;
  const producer = async (): Promise<void> => {
    while (next < count) await events.publish("bench.e", schema, of.data(next++));
  };
  await Promise.all([...Array.from({ length: IN_FLIGHT }, producer), finished]);
  if (sink === -1) throw new Error("unreachable");
  void processor;
}

const subscribeLoop: Loop = async (count, payload, sample) => {
  await using events = createMemoryEvents();
  await events.ensureStream("bench", { subjects: ["bench.>"] });
  await events.ensureConsumer("bench", { name: "worker", from: { start: true }, maxUnsettledEvents: 10_000 });
  const consume = async (): Promise<void> => {
    await using sub = await events.subscribe("bench", "worker", { schema: TestEventSchema, prefetch: 100 });
    let n = 0;
    let sink = 0;
    for await (const event of sub) {
      sink ^= event.data.text.length;
      await event.ack();
      if (++n % 1_000 === 0) sample();
      if (n === count) break;
    }
    if (sink === -1) throw new Error("unreachable");
  };
  await Promise.all([produce((d) => events.publish("bench.e", TestEventSchema, d), count, payload), consume()]);
};

const protobufLoop: Loop = async (count, payload, sample) => {
  let sink = 0;
  for (let i = 0; i < count; i++) {
    const bytes = toBinary(TestEventSchema, create(TestEventSchema, eventData(i, payload)));
    sink ^= fromBinary(TestEventSchema, bytes).text.length;
    if (i % 1_000 === 0) sample();
  }
  if (sink === -1) throw new Error("unreachable");
};

const LOOPS: { id: MemoryLoopResult["id"]; title: string; run: Loop }[] = [
  { id: "process", title: "publish → events.process (1 handler) → ack", run: processLoop },
  { id: "subscribe", title: "publish → subscribe loop (decode, ack)", run: subscribeLoop },
  { id: "protobuf", title: "protobuf-es alone: create, encode, decode", run: protobufLoop },
  { id: "process-signup", title: "publish → process → ack of a Signup (6 rules), validate off", run: signupLoop },
  {
    id: "process-validated",
    title: "the same with validate: true (publish and processor check the rules)",
    run: validatedLoop,
  },
];

/** Runs both loops for `rounds` alternating rounds of `count` events. */
export async function runMemoryBench(
  count: number,
  rounds: number,
  payload: Payload,
  progress: (text: string) => void,
): Promise<MemoryReport> {
  const rates = new Map<string, number[]>(LOOPS.map((l) => [l.id, []]));
  const peaks = new Map<string, number[]>(LOOPS.map((l) => [l.id, []]));
  // One warm-up round each, untimed: the first round pays for the JIT.
  for (const loop of LOOPS) await loop.run(Math.min(count, 20_000), payload, () => {});
  for (let round = 1; round <= rounds; round++) {
    for (const loop of LOOPS) {
      collectGarbage();
      const before = heapUsed();
      let peak = before;
      const started = performance.now();
      await loop.run(count, payload, () => {
        peak = Math.max(peak, heapUsed());
      });
      const seconds = (performance.now() - started) / 1000;
      const rate = count / seconds;
      rates.get(loop.id)?.push(rate);
      peaks.get(loop.id)?.push(Math.max(peak, heapUsed()) - before);
      progress(`memory ${loop.id} round ${round}/${rounds}: ${Math.round(rate).toLocaleString("en-US")}/s`);
    }
  }
  const loops: MemoryLoopResult[] = [];
  for (const loop of LOOPS) {
    let retained = Number.NaN;
    if (collectGarbage()) {
      const before = heapUsed();
      await loop.run(count, payload, () => {});
      collectGarbage();
      retained = heapUsed() - before;
    }
    const roundRates = rates.get(loop.id) ?? [];
    loops.push({
      id: loop.id,
      title: loop.title,
      count,
      eventsPerSec: median(roundRates),
      roundsEventsPerSec: roundRates,
      heapPeakBytesPerEvent: median(peaks.get(loop.id) ?? []) / count,
      retainedBytesPerEvent: retained / count,
    });
  }
  return { payloadBytes: payload.bytes, rounds, loops };
}
