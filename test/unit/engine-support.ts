/**
 * What the memory engine's unit tests share: an engine on a test clock,
 * whole configurations with defaults, an append, and a sink that buffers
 * deliveries as a subscription's reader would.
 */
import type {
  ConsumerConfig,
  Delivery,
  Engine,
  Feed,
  FeedSink,
  OutgoingEvent,
  StreamConfig,
} from "../../src/engines/engine.js";
import { createMemoryEngine } from "../../src/engines/memory/engine.js";
import type { WindshiftError } from "../../src/errors.js";
import { createTestClock, type TestClock } from "../../src/testing/test-clock.js";

export { windshiftError as failure } from "../helpers.js";

/** When every test's clock starts. */
export const START = Date.UTC(2030, 0, 1);

/** A memory engine on a test clock starting at {@link START}. */
export function setup(): { clock: TestClock; engine: Engine } {
  const clock = createTestClock({ now: START });
  return { clock, engine: createMemoryEngine({ clock }) };
}

/** A stream's whole configuration: `<name>.>`, no limits, a 2-minute dedupe window. */
export function streamConfig(name: string, overrides: Partial<StreamConfig> = {}): StreamConfig {
  return {
    name,
    subjects: [`${name}.>`],
    maxAgeMs: undefined,
    maxEvents: undefined,
    maxEventsPerSubject: undefined,
    maxBytes: undefined,
    maxEventSize: undefined,
    discardPolicy: "old",
    discardNewPerSubject: false,
    storage: "file",
    replicas: 1,
    deduplicationWindowMs: 120_000,
    sources: [],
    ...overrides,
  };
}

/** A durable consumer "c" from the start, with windshift's defaults. */
export function consumerConfig(overrides: Partial<ConsumerConfig> = {}): ConsumerConfig {
  return {
    name: "c",
    subjects: [],
    from: { kind: "start" },
    processingTimeoutMs: 30_000,
    maxDeliveryAttempts: undefined,
    inactiveThresholdMs: undefined,
    maxUnsettledEvents: 1_000,
    ...overrides,
  };
}

const text = new TextEncoder();

/** An event to append: its subject as the payload, no headers, no checks. */
export function outgoing(subject: string, overrides: Partial<OutgoingEvent> = {}): OutgoingEvent {
  return {
    subject,
    payload: text.encode(subject),
    headers: [],
    idempotencyKey: undefined,
    expectedLastId: undefined,
    expectedLastSubjectId: undefined,
    ...overrides,
  };
}

/** Appends one event; its id. */
export async function append(engine: Engine, subject: string, overrides: Partial<OutgoingEvent> = {}): Promise<number> {
  return (await engine.append(outgoing(subject, overrides), { timeoutMs: 5_000, signal: undefined })).id;
}

/** A sink buffering deliveries until the test takes them, as a subscription's reader would. */
export class Sink implements FeedSink {
  readonly got: Delivery[] = [];
  buffer: Delivery[] = [];
  failure: WindshiftError | undefined;
  hasEnded = false;
  /** The deepest the buffer ever was. */
  deepest = 0;
  /** Calls of any sink method. */
  calls = 0;
  feed: Feed | undefined;

  buffered(): number {
    this.calls++;
    return this.buffer.length;
  }
  deliver(delivery: Delivery): void {
    this.calls++;
    this.got.push(delivery);
    this.buffer.push(delivery);
    this.deepest = Math.max(this.deepest, this.buffer.length);
  }
  fail(error: WindshiftError): void {
    this.calls++;
    this.failure = error;
  }
  ended(): void {
    this.calls++;
    this.hasEnded = true;
  }
  report(): void {}
  ids(): number[] {
    return this.got.map((d) => d.id);
  }
  /** Hands out what is buffered, as a reader would, and asks for more. */
  take(count = this.buffer.length): Delivery[] {
    const taken = this.buffer.splice(0, count);
    this.feed?.pull();
    return taken;
  }
}

/** Attaches a new {@link Sink} to `consumer`. */
export function subscribe(engine: Engine, stream: string, consumer: string, limit = 100): Sink {
  const sink = new Sink();
  sink.feed = engine.consume(stream, consumer, sink, { limit });
  return sink;
}

/** Lets the event loop turn until `condition` holds; fails after a bounded number of turns. */
export async function until(condition: () => boolean, what = "condition"): Promise<void> {
  for (let turn = 0; turn < 50; turn++) {
    if (condition()) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  throw new Error(`not reached after 50 turns: ${what}`);
}

/** Lets deliveries that are coming arrive (for asserting that nothing more came). */
export async function quiet(): Promise<void> {
  for (let turn = 0; turn < 10; turn++) await new Promise((resolve) => setImmediate(resolve));
}
