import { createClient } from "../client/client.js";
import type { Events } from "../client/events.js";
import { type ClientOptions, clientDefaults, readClientOptions } from "../client/options.js";
import type { Engine } from "../engines/engine.js";
import { createMemoryEngine } from "../engines/memory/engine.js";
import { validationError } from "../errors.js";
import { type Clock, realClock } from "../internal/clock.js";
import { describe } from "../internal/names.js";
import { type Defaults, mergeOptions } from "../internal/options.js";
import * as v from "../internal/validate.js";

/** Options for {@link createMemoryStore}. */
export interface MemoryStoreOptions {
  /**
   * The clock the store's timers run on (processing timeouts, nak delays,
   * retention, deduplication windows), and those of every client over it
   * (auto-ping, retry backoff). Give a test clock to control time.
   * @default the real clock
   */
  readonly clock?: Clock;
  /**
   * The largest payload one event may have, in bytes, as a server's max
   * payload.
   * @default 1_048_576 (nats-server's default)
   */
  readonly maxPayloadBytes?: number;
}

/**
 * Where the in-memory engine keeps streams, consumers and key-value buckets:
 * what a NATS server is to `createEvents`. Several clients over one store see
 * the same events, as services connected to one server do.
 */
export interface MemoryStore {
  /** The clock the store runs on. */
  readonly clock: Clock;
  /** Stops the store's timers and drops its events; its clients fail with `CLOSED` afterwards. */
  close(): Promise<void>;
}

/** Options for {@link createMemoryEvents}. */
export interface MemoryEventsOptions extends ClientOptions, MemoryStoreOptions {
  /**
   * The store to use, shared with other clients. Without one the client gets
   * a store of its own (created with `clock` and `maxPayloadBytes`), closed
   * with the client.
   * @default a new store
   */
  readonly store?: MemoryStore;
}

const storeDefaults: Defaults<MemoryStoreOptions> = Object.freeze({
  clock: realClock,
  maxPayloadBytes: 1_048_576,
});

const memoryDefaults: Defaults<MemoryEventsOptions> = Object.freeze({
  ...clientDefaults,
  ...storeDefaults,
  clock: undefined,
  store: undefined,
});

class MemoryStoreImpl implements MemoryStore {
  readonly clock: Clock;
  readonly engine: Engine;
  constructor(clock: Clock, maxPayloadBytes: number) {
    this.clock = clock;
    this.engine = createMemoryEngine({ clock, maxPayloadBytes });
  }
  close(): Promise<void> {
    return this.engine.close();
  }
}

/**
 * Creates a store for the in-memory engine, to share between clients.
 *
 * @example
 * ```ts
 * const clock = createTestClock();
 * const store = createMemoryStore({ clock });
 * const orders = createMemoryEvents({ store });
 * const billing = createMemoryEvents({ store, logger: console });
 * ```
 */
export function createMemoryStore(options?: MemoryStoreOptions): MemoryStore {
  const o = mergeOptions<MemoryStoreOptions>("options", options, storeDefaults);
  return new MemoryStoreImpl(readClock(o.clock), v.integer("maxPayloadBytes", o.maxPayloadBytes, 1) as number);
}

/**
 * Creates an events client on the in-memory engine: the same {@link Events}
 * as `createEvents(nc)` gives, with no server, no ports and no I/O, for unit
 * tests of your handlers. Give it a test clock (`createTestClock()`) to
 * advance processing timeouts, nak delays and retries instead of waiting.
 *
 * @example
 * ```ts
 * const clock = createTestClock();
 * const events = createMemoryEvents({ clock });
 * await events.ensureStream("orders", { subjects: ["orders.>"] });
 * await events.ensureConsumer("orders", { name: "billing", from: { start: true }, processingTimeoutMs: 30_000 });
 * await events.publish("orders.created", OrderCreatedSchema, { orderId: "1" });
 * const sub = await events.subscribe("orders", "billing", { schema: OrderCreatedSchema, autoPing: false });
 * const it = sub[Symbol.asyncIterator]();
 * const first = await it.next(); // not acked…
 * await clock.advance(30_000); // …so it comes again once its processing timeout passed
 * const again = await it.next();
 * ```
 */
export function createMemoryEvents(options?: MemoryEventsOptions): Events {
  const o = mergeOptions<MemoryEventsOptions>("options", options, memoryDefaults);
  const settings = readClientOptions(o);
  let store: MemoryStoreImpl;
  let own = false;
  if (o.store !== undefined) {
    if (!(o.store instanceof MemoryStoreImpl)) {
      throw validationError("store", `${describe(o.store)} is not a store from createMemoryStore()`);
    }
    if (o.clock !== undefined && o.clock !== o.store.clock) {
      throw validationError("clock", "differs from the store's clock; give the clock to createMemoryStore()");
    }
    if (options?.maxPayloadBytes !== undefined) {
      throw validationError("maxPayloadBytes", "is the store's: give it to createMemoryStore()");
    }
    store = o.store;
  } else {
    store = new MemoryStoreImpl(
      o.clock === undefined ? realClock : readClock(o.clock),
      v.integer("maxPayloadBytes", o.maxPayloadBytes, 1) as number,
    );
    own = true;
  }
  // A shared store stays open for its other clients: only its own close() ends it.
  return createClient(store.engine, settings, own ? () => store.close() : async () => {});
}

function readClock(value: unknown): Clock {
  const clock = value as Partial<Clock> | null;
  if (
    typeof clock !== "object" ||
    clock === null ||
    typeof clock.now !== "function" ||
    typeof clock.setTimeout !== "function" ||
    typeof clock.clearTimeout !== "function"
  ) {
    throw validationError("clock", `${describe(value)} is not a clock (now, setTimeout, clearTimeout)`);
  }
  return clock as Clock;
}
