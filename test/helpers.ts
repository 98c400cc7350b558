import { randomUUID } from "node:crypto";
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, expect } from "vitest";
import {
  type ConsumerOptions,
  createEvents,
  type Events,
  type EventsOptions,
  isWindshiftError,
  type StreamOptions,
  type WindshiftError,
} from "../src/index.js";
import { type NatsServer, startNatsServer } from "../src/testing/index.js";

/** One server per test file, with a connection and a client over it. */
export interface TestEnv {
  server: NatsServer;
  nc: NatsConnection;
  events: Events;
  /** Opens another connection (closed after the file). */
  connect(): Promise<NatsConnection>;
  /** A client over a new connection with these options. */
  client(options?: EventsOptions): Promise<Events>;
}

/** Starts a server before the file's tests and stops everything after. */
export function useServer(): TestEnv {
  const env = {} as TestEnv;
  const extra: NatsConnection[] = [];
  beforeAll(async () => {
    env.server = await startNatsServer();
    env.connect = async () => {
      const nc = await connect({ servers: env.server.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
      extra.push(nc);
      return nc;
    };
    env.client = async (options) => createEvents(await env.connect(), options);
    env.nc = await env.connect();
    env.events = createEvents(env.nc);
  });
  afterAll(async () => {
    await Promise.all(extra.map((nc) => nc.close().catch(() => {})));
    await env.server?.stop();
  });
  return env;
}

/** A unique stream name and subject prefix per test. */
export function uniqueName(prefix = "s"): string {
  return `${prefix}_${randomUUID().replaceAll("-", "").slice(0, 12)}`;
}

/** Polls `check` until it returns a value other than undefined/false, or fails at the deadline. */
export async function waitFor<T>(
  check: () => T | undefined | false | Promise<T | undefined | false>,
  { timeoutMs = 10_000, intervalMs = 20, what = "condition" } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await holdFor(intervalMs);
  }
}

/** Takes the next event from an iterator, failing after `timeoutMs`. */
export async function nextEvent<T>(it: AsyncIterator<T>, timeoutMs = 5_000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const result = await Promise.race([
    it.next(),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no event within ${timeoutMs} ms`)), timeoutMs);
    }),
  ]);
  clearTimeout(timer);
  if (result.done) throw new Error("the subscription ended");
  return result.value;
}

/**
 * Asserts that no event arrives within `windowMs`. This is the one place a
 * bounded wait is the condition itself: "nothing happens for this long".
 * Returns the still-pending `next()` so the caller can settle it later.
 */
export async function expectNoEvent<T>(
  it: AsyncIterator<T>,
  windowMs: number,
): Promise<{ next: Promise<IteratorResult<T>> }> {
  const next = it.next();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const winner = await Promise.race([
    next.then(() => "event" as const),
    new Promise<"quiet">((resolve) => {
      timer = setTimeout(() => resolve("quiet"), windowMs);
    }),
  ]);
  clearTimeout(timer);
  if (winner === "event") {
    const r = await next;
    throw new Error(`expected no event for ${windowMs} ms, got ${JSON.stringify((r.value as { id?: number })?.id)}`);
  }
  return { next };
}

/** Freezes a server process (SIGSTOP) and waits until the kernel reports it stopped. */
export async function pauseProcess(pid: number): Promise<void> {
  const { readFile } = await import("node:fs/promises");
  process.kill(pid, "SIGSTOP");
  await waitFor(
    async () => {
      const stat = await readFile(`/proc/${pid}/stat`, "utf8");
      return /^\d+ \(.*\) T/.test(stat);
    },
    { intervalMs: 5, what: `process ${pid} to stop` },
  );
}

/** Resumes a process frozen by {@link pauseProcess}. */
export function resumeProcess(pid: number): void {
  process.kill(pid, "SIGCONT");
}

/**
 * Awaits `work` (a promise, or a function that may throw or return one), which
 * must fail with a WindshiftError; returns that error.
 */
export async function windshiftError(work: Promise<unknown> | (() => unknown)): Promise<WindshiftError> {
  let err: unknown;
  try {
    await (typeof work === "function" ? work() : work);
  } catch (e) {
    err = e;
  }
  if (!isWindshiftError(err))
    throw new Error(`expected a WindshiftError, got ${err === undefined ? "success" : String(err)}`);
  return err;
}

/**
 * Lets `ms` pass. Only for tests where the passing of time is itself the
 * condition under test ("nothing is delivered for this long", "ping at this
 * cadence"); never as a stand-in for waiting on something that happens.
 */
export function holdFor(ms: number): Promise<void> {
  return new Promise((resolve) => {
    setTimeout(resolve, ms);
  });
}

/** A fresh stream capturing `<stream>.>` with a durable consumer "worker" reading it from the start. */
export async function streamWithWorker(
  events: Events,
  consumer: Omit<ConsumerOptions, "name" | "from"> = {},
  stream: Omit<StreamOptions, "subjects"> = {},
): Promise<{ stream: string; consumer: string }> {
  const name = uniqueName();
  await events.ensureStream(name, { subjects: [`${name}.>`], ...stream });
  const c = await events.ensureConsumer(name, { name: "worker", from: { start: true }, ...consumer });
  return { stream: name, consumer: c.name };
}

/** What the server says about a consumer's progress. */
export async function consumerState(nc: NatsConnection, stream: string, consumer: string) {
  const info = await (await jetstreamManager(nc)).consumers.info(stream, consumer);
  return {
    ackFloor: info.ack_floor.stream_seq,
    pending: info.num_pending,
    ackPending: info.num_ack_pending,
    redelivered: info.num_redelivered,
  };
}

/** Waits until the first `count` events of the stream are acked (or terminated) through the consumer. */
export async function waitForSettled(
  nc: NatsConnection,
  stream: string,
  consumer: string,
  count: number,
): Promise<void> {
  await waitFor(
    async () => {
      const s = await consumerState(nc, stream, consumer);
      return s.ackFloor === count && s.pending === 0 && s.ackPending === 0;
    },
    { what: `${count} events settled` },
  );
}

/**
 * Asserts that `target.stats` comes to match `expected`. A processor counts a
 * settlement once the server has confirmed it, a moment after the consumer's
 * state shows it, so the counters are polled for up to the usual deadline.
 */
export async function expectStats(target: { readonly stats: object }, expected: Record<string, number>): Promise<void> {
  const current = () => target.stats as Record<string, unknown>;
  await waitFor(() => Object.entries(expected).every(([k, v]) => current()[k] === v), {
    what: `stats ${JSON.stringify(expected)}`,
  }).catch(() => undefined);
  expect(current()).toMatchObject(expected);
}
