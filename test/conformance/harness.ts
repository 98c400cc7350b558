/**
 * The conformance harness: every behaviour test in test/conformance/ is
 * written once against `Events` and runs on every engine, each in a
 * `describe` block of its own named after the engine:
 *
 * - `jetstream`: a real nats-server started for the file (free port,
 *   temporary store), real time;
 * - `memory`: `createMemoryEvents` over a store of its own, on a test clock;
 * - `postgres`: `createPostgresEvents` over a schema of its own in the test
 *   database (dropped after the file), real time.
 *
 * Time is the one thing a test must not handle itself: it lets time pass with
 * `env.elapse(ms)` and waits for conditions with `env.eventually(check)`, which
 * advance the test clock on the memory engine and wait real time on
 * JetStream. A behaviour an engine cannot have is skipped by a capability
 * flag (`env.caps`), never by the engine's name, as Watermill's universal
 * pub/sub tests do.
 */
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import pg from "pg";
import { afterAll, beforeAll, describe } from "vitest";
import type { Engine } from "../../src/engines/engine.js";
import { createJetStreamEngine } from "../../src/engines/jetstream/engine.js";
import { createMemoryEngine } from "../../src/engines/memory/engine.js";
import { quoted } from "../../src/engines/postgres/database.js";
import { createPostgresEngine } from "../../src/engines/postgres/engine.js";
import { ensureSchema } from "../../src/engines/postgres/schema.js";
import { type ClientOptions, createEvents, type Events } from "../../src/index.js";
import { silentLogger } from "../../src/internal/logger.js";
import { createPostgresEvents } from "../../src/postgres/index.js";
import {
  createMemoryEvents,
  createMemoryStore,
  createTestClock,
  type MemoryStore,
  type NatsServer,
  startNatsServer,
  type TestClock,
} from "../../src/testing/index.js";
import { holdFor, waitFor } from "../helpers.js";
import { POSTGRES_URL, uniqueSchema } from "../postgres/harness.js";

/** The next value of an iterator, failing after a few seconds (real time) instead of hanging. */
export { nextEvent as nextOf, streamWithWorker, uniqueName } from "../helpers.js";

/** The engines every conformance test runs on. */
export const ENGINES = ["jetstream", "memory", "postgres"] as const;
export type EngineName = (typeof ENGINES)[number];

/** What an engine can do; a test of something an engine lacks checks the flag. */
export interface Capabilities {
  /** Time moves only when the test advances it (the memory engine's test clock). */
  readonly virtualTime: boolean;
  /** A real nats-server: server-version gates, wire headers of the NATS protocol. */
  readonly natsServer: boolean;
  /** More than one replica can be had (the memory engine echoes any number; one server has one). */
  readonly replication: boolean;
  /** Streams can copy other streams (sources); PostgreSQL has nothing to copy from. */
  readonly sources: boolean;
}

/** A consumer's progress, as the engine reports it. */
export interface Progress {
  /** Every event up to this id is settled. */
  readonly ackFloor: number;
  /** Delivered and not settled. */
  readonly unsettled: number;
  /** Not delivered yet. */
  readonly pending: number;
}

/** One engine, set up for a test file. */
export interface EngineEnv {
  readonly name: EngineName;
  readonly caps: Capabilities;
  /** A client with the default options. */
  readonly events: Events;
  /** Another client on the same server or store (closed after the file). */
  client(options?: ClientOptions): Promise<Events>;
  /** The engine's time, in epoch milliseconds: the test clock's, or the machine's (and nats-server's). */
  now(): number;
  /** Lets `ms` pass on the engine's clock: advances the test clock, or waits real time. */
  elapse(ms: number): Promise<void>;
  /**
   * Polls `check` until it returns something other than `undefined` or
   * `false`. On virtual time the clock advances `stepMs` between checks, up
   * to `timeoutMs` of virtual time; on real time it waits up to `timeoutMs`.
   */
  eventually<T>(
    check: () => T | undefined | false | Promise<T | undefined | false>,
    options?: { timeoutMs?: number; stepMs?: number; what?: string },
  ): Promise<T>;
  /** The consumer's progress as the engine sees it. */
  progress(stream: string, consumer: string): Promise<Progress>;
  /** Waits until the first `count` events of the stream are settled through the consumer and nothing is outstanding. */
  settled(stream: string, consumer: string, count: number): Promise<void>;
  /** The test clock (memory engine only). */
  readonly clock: TestClock | undefined;
  /** The NATS connection (JetStream only), for checks of the engine's own. */
  readonly nc: NatsConnection | undefined;
  /** A new engine over the same server, on the same clock, or over the same schema; the caller closes it. */
  newEngine(): Engine;
}

/** A consumer's progress as `engine` reports it. */
async function progressOf(engine: Engine, stream: string, consumer: string): Promise<Progress> {
  const state = await engine.consumerState(stream, consumer, undefined);
  return { ackFloor: state.ackFloor, unsettled: state.unsettled, pending: state.pending };
}

/** Real-time bound on any single wait, so a broken test fails instead of hanging. */
const REAL_TIMEOUT_MS = 15_000;

/**
 * Declares `body` once per engine, in a `describe` named `<title> [<engine>]`,
 * with the engine set up before the block's tests and torn down after.
 */
export function describeEngines(title: string, body: (env: EngineEnv) => void): void {
  for (const name of ENGINES) {
    describe(`${title} [${name}]`, () => {
      body(useEngine(name));
    });
  }
}

/** Sets up one engine around the enclosing block's tests. */
export function useEngine(name: EngineName): EngineEnv {
  const env = name === "jetstream" ? jetStreamEnv() : name === "memory" ? memoryEnv() : postgresEnv();
  beforeAll(() => env.setUp());
  afterAll(() => env.tearDown());
  return env.api;
}

interface Lifecycle {
  readonly api: EngineEnv;
  setUp(): Promise<void>;
  tearDown(): Promise<void>;
}

function jetStreamEnv(): Lifecycle {
  let server: NatsServer | undefined;
  const connections: NatsConnection[] = [];
  let events: Events | undefined;
  let nc: NatsConnection | undefined;
  let engine: Engine | undefined;
  const open = async (): Promise<NatsConnection> => {
    const conn = await connect({
      servers: (server as NatsServer).url,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 100,
    });
    connections.push(conn);
    return conn;
  };
  const api: EngineEnv = {
    name: "jetstream",
    caps: { virtualTime: false, natsServer: true, replication: false, sources: true },
    get events() {
      return required(events, "events");
    },
    get nc() {
      return nc;
    },
    clock: undefined,
    client: async (options) => createEvents(await open(), options),
    now: () => Date.now(),
    elapse: holdFor,
    eventually: (check, options = {}) => waitFor(check, options),
    progress: (stream, consumer) => progressOf(required(engine, "engine"), stream, consumer),
    settled: (stream, consumer, count) => settledWith(api, stream, consumer, count),
    newEngine: () => createJetStreamEngine(required(nc, "nc"), { logger: silentLogger, maxPublishesInFlight: 4 }),
  };
  return {
    api,
    async setUp() {
      server = await startNatsServer();
      nc = await open();
      events = createEvents(nc);
      engine = createJetStreamEngine(nc, { logger: silentLogger, maxPublishesInFlight: 16 });
    },
    async tearDown() {
      await engine?.close();
      await Promise.all(connections.map((c) => c.close().catch(() => {})));
      await server?.stop();
    },
  };
}

function memoryEnv(): Lifecycle {
  let clock: TestClock | undefined;
  let store: MemoryStore | undefined;
  let events: Events | undefined;
  let engine: Engine | undefined;
  const api: EngineEnv = {
    name: "memory",
    caps: { virtualTime: true, natsServer: false, replication: true, sources: true },
    get events() {
      return required(events, "events");
    },
    get clock() {
      return clock;
    },
    nc: undefined,
    client: async (options) => createMemoryEvents({ ...options, store: required(store, "store") }),
    now: () => required(clock, "clock").now(),
    elapse: (ms) => required(clock, "clock").advance(ms),
    eventually: (check, options = {}) => pollVirtualTime(required(clock, "clock"), check, options),
    progress: (stream, consumer) => progressOf(required(engine, "engine"), stream, consumer),
    settled: (stream, consumer, count) => settledWith(api, stream, consumer, count),
    newEngine: () => createMemoryEngine({ clock: required(clock, "clock") }),
  };
  return {
    api,
    async setUp() {
      clock = createTestClock();
      store = createMemoryStore({ clock });
      events = createMemoryEvents({ store });
      engine = engineOf(store);
    },
    async tearDown() {
      await store?.close();
    },
  };
}

function postgresEnv(): Lifecycle {
  const schema = uniqueSchema("ws_conf");
  const pools: pg.Pool[] = [];
  const clients: Events[] = [];
  let events: Events | undefined;
  let engine: Engine | undefined;
  const pool = (): pg.Pool => {
    const p = new pg.Pool({ connectionString: POSTGRES_URL, max: 10 });
    p.on("error", () => {});
    pools.push(p);
    return p;
  };
  const api: EngineEnv = {
    name: "postgres",
    caps: { virtualTime: false, natsServer: false, replication: false, sources: false },
    get events() {
      return required(events, "events");
    },
    clock: undefined,
    nc: undefined,
    client: async (options) => {
      const client = createPostgresEvents({ ...options, pool: pool(), schema });
      clients.push(client);
      return client;
    },
    now: () => Date.now(),
    elapse: holdFor,
    eventually: (check, options = {}) => waitFor(check, options),
    progress: (stream, consumer) => progressOf(required(engine, "engine"), stream, consumer),
    settled: (stream, consumer, count) => settledWith(api, stream, consumer, count),
    newEngine: () => postgresEngine(pool(), schema),
  };
  return {
    api,
    async setUp() {
      const main = pool();
      await ensureSchema(main, { schema });
      events = createPostgresEvents({ pool: main, schema });
      engine = postgresEngine(pool(), schema);
    },
    async tearDown() {
      await Promise.all([events, ...clients].map((c) => c?.close().catch(() => {})));
      await engine?.close();
      const admin = new pg.Client({ connectionString: POSTGRES_URL });
      await admin.connect();
      try {
        await admin.query(`DROP SCHEMA IF EXISTS ${quoted(schema)} CASCADE`);
      } finally {
        await admin.end();
        await Promise.all(pools.map((p) => p.end()));
      }
    },
  };
}

/** A PostgreSQL engine over a migrated schema, with the client's defaults. */
function postgresEngine(pool: pg.Pool, schema: string): Engine {
  return createPostgresEngine({
    pool,
    schema,
    migrate: false,
    pollIntervalMs: 1_000,
    maxPayloadBytes: 1_048_576,
    logger: silentLogger,
    ownsPool: false,
  });
}

/** The engine behind a store, to read consumer progress the way the JetStream side reads it from the server. */
function engineOf(store: MemoryStore): Engine {
  const engine = (store as { engine?: Engine }).engine;
  if (engine === undefined) throw new Error("the memory store keeps its engine elsewhere now: update the harness");
  return engine;
}

async function settledWith(env: EngineEnv, stream: string, consumer: string, count: number): Promise<void> {
  await env.eventually(
    async () => {
      const p = await env.progress(stream, consumer);
      return p.ackFloor === count && p.pending === 0 && p.unsettled === 0;
    },
    { what: `${count} events settled through ${stream}/${consumer}` },
  );
}

async function pollVirtualTime<T>(
  clock: TestClock,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  { timeoutMs = 10_000, stepMs = 25, what = "condition" }: { timeoutMs?: number; stepMs?: number; what?: string },
): Promise<T> {
  const start = clock.now();
  const realDeadline = Date.now() + REAL_TIMEOUT_MS;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (clock.now() - start >= timeoutMs || Date.now() > realDeadline) {
      throw new Error(`timed out after ${clock.now() - start} ms of test-clock time waiting for ${what}`);
    }
    await clock.advance(stepMs);
  }
}

/**
 * Asserts that nothing arrives while `windowMs` pass on the engine's clock.
 * Returns the still-pending `next()` for the caller to settle later.
 */
export async function expectQuiet<T>(
  env: EngineEnv,
  it: AsyncIterator<T>,
  windowMs: number,
): Promise<{ next: Promise<IteratorResult<T>> }> {
  let arrived: IteratorResult<T> | undefined;
  const next = it.next();
  void next.then(
    (r) => {
      arrived = r;
    },
    () => {},
  );
  await env.elapse(windowMs);
  // Let anything that is ready be handed out before looking.
  await new Promise((resolve) => setImmediate(resolve));
  if (arrived !== undefined) {
    const id = (arrived.value as { id?: number } | undefined)?.id;
    throw new Error(`expected nothing for ${windowMs} ms, got ${arrived.done ? "the end" : `event ${id}`}`);
  }
  return { next };
}

function required<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`the engine's ${what} is used before the file's beforeAll ran`);
  return value;
}
