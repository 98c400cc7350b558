/**
 * What the fault scenarios share: connections that keep reconnecting, a
 * publisher in lanes, a consuming loop that feeds the {@link History}, a
 * reader of a whole stream, and the `[faults]` report lines.
 *
 * @module
 */
import { type JetStreamManager, jetstreamManager } from "@nats-io/jetstream";
import type { ConnectionOptions, NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, expect } from "vitest";
import { TestEventSchema } from "../../gen/windshift/test/v1/events_pb.js";
import {
  createEvents,
  type ErrorCode,
  type Event,
  type Events,
  isWindshiftError,
  type PublishOptions,
  type Subscription,
  type SubscriptionStatus,
} from "../../src/index.js";
import { type NatsServer, startNatsServer } from "../../src/testing/index.js";
import { holdFor, waitFor } from "../helpers.js";
import type { History, HistoryReport } from "./history.js";

/** Prints one line the CI log collector picks up: `[faults] <scenario>: <facts>`. */
export function report(scenario: string, facts: Record<string, string | number | boolean>): void {
  const text = Object.entries(facts)
    .map(([k, v]) => `${k}=${typeof v === "number" && !Number.isInteger(v) ? v.toFixed(0) : v}`)
    .join(" ");
  console.log(`[faults] ${scenario}: ${text}`);
}

/** A connection that never gives up reconnecting, to `servers`. */
export function connectTo(
  servers: string | string[],
  options: Partial<ConnectionOptions> = {},
): Promise<NatsConnection> {
  return connect({
    servers,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 100,
    name: "windshift-faults",
    ...options,
  });
}

/** The code of a WindshiftError, or the error's name. */
export function codeOf(err: unknown): ErrorCode | string {
  if (isWindshiftError(err)) return err.code;
  return err instanceof Error ? err.name : String(err);
}

/** Counts things by name. */
export class Tally {
  readonly counts = new Map<string, number>();
  add(name: string): void {
    this.counts.set(name, (this.counts.get(name) ?? 0) + 1);
  }
  get total(): number {
    let n = 0;
    for (const v of this.counts.values()) n += v;
    return n;
  }
  toString(): string {
    return this.counts.size === 0 ? "none" : [...this.counts].map(([k, v]) => `${k}:${v}`).join(",");
  }
}

/** Tracks the longest pause between consecutive moments (acks, deliveries). */
export class Gaps {
  #last: number | undefined;
  /** The longest pause so far, in ms. */
  longest = 0;
  /** When the longest pause ended (`performance.now()`). */
  longestEndedAt = 0;
  /** When the longest pause began. */
  longestStartedAt = 0;
  mark(now = performance.now()): void {
    if (this.#last !== undefined && now - this.#last > this.longest) {
      this.longest = now - this.#last;
      this.longestStartedAt = this.#last;
      this.longestEndedAt = now;
    }
    this.#last = now;
  }
  /** Forgets the pauses seen so far (e.g. before the fault). */
  reset(): void {
    this.longest = 0;
    this.longestStartedAt = 0;
    this.longestEndedAt = 0;
  }
}

/** Options for {@link publishLanes}. */
export interface LaneOptions {
  readonly stream: string;
  /** Concurrent publishers; lane `k` publishes to `<stream>.lane<k>`, one event at a time. */
  readonly lanes: number;
  /** Events per lane. */
  readonly perLane: number;
  readonly history: History;
  /** Key prefix, so that several runs on one stream do not collide. */
  readonly prefix?: string;
  readonly retry?: PublishOptions["retry"];
  readonly timeoutMs?: number;
  /** Stop early when this returns true (checked before each publish). */
  readonly stop?: () => boolean;
  /** Publish at most this many events per second across all lanes (paced per lane). */
  readonly ratePerSecond?: number;
  /** Told about every acked publish. */
  readonly gaps?: Gaps;
}

/** What {@link publishLanes} saw. */
export interface LaneResult {
  /** Failed publishes by error code. */
  readonly errors: Tally;
}

/**
 * Publishes `lanes × perLane` test events, each with a unique idempotency key;
 * every ack goes into the history, every failure is counted and recorded as
 * an unknown outcome (a failed publish may still have been stored).
 */
export async function publishLanes(events: Events, o: LaneOptions): Promise<LaneResult> {
  const errors = new Tally();
  const prefix = o.prefix ?? "k";
  const intervalMs = o.ratePerSecond === undefined ? 0 : (1000 * o.lanes) / o.ratePerSecond;
  const lane = async (k: number): Promise<void> => {
    const subject = `${o.stream}.lane${k}`;
    let next = performance.now();
    for (let i = 0; i < o.perLane; i++) {
      if (o.stop?.()) return;
      if (intervalMs > 0) {
        // Pacing is a load shape: the passing of time is the point here.
        next += intervalMs;
        const wait = next - performance.now();
        if (wait > 0) await holdFor(wait); // pacing to the asked rate
      }
      const key = `${prefix}${k}-${i}`;
      const options: PublishOptions = { idempotencyKey: key };
      try {
        const ack = await events.publish(
          subject,
          TestEventSchema,
          { text: key, number: BigInt(i) },
          {
            ...options,
            ...(o.retry === undefined ? {} : { retry: o.retry }),
            ...(o.timeoutMs === undefined ? {} : { timeoutMs: o.timeoutMs }),
          },
        );
        o.history.published({ key, subject, id: ack.id, duplicate: ack.duplicate });
        o.gaps?.mark();
      } catch (err) {
        errors.add(codeOf(err));
        o.history.unknownOutcome(key, subject);
      }
    }
  };
  await Promise.all(Array.from({ length: o.lanes }, (_, k) => lane(k)));
  return { errors };
}

/** A running consuming loop; see {@link consume}. */
export interface Consuming {
  /** Resolves when the loop ends: with the error that ended it, or undefined. */
  readonly done: Promise<unknown>;
  /** Failed acks by error code. */
  readonly ackFailures: Tally;
  /** Marks every handled delivery. */
  readonly gaps: Gaps;
}

/** Options for {@link consume}. */
export interface ConsumeOptions {
  /** Called with each event before it is acked; a rejection is counted and the event not acked. */
  readonly handle?: (event: Event) => void | Promise<void>;
  /** Ack each event (awaited, one at a time). @default true */
  readonly ack?: boolean;
}

/**
 * Iterates `sub` in the background: records each delivery in `history`, then
 * acks it (awaited, so a failed ack is seen and counted).
 */
export function consume(sub: Subscription, history: History, options: ConsumeOptions = {}): Consuming {
  const ackFailures = new Tally();
  const gaps = new Gaps();
  const done = (async (): Promise<unknown> => {
    try {
      for await (const event of sub) {
        gaps.mark();
        history.handled({
          key: event.headers.idempotencyKey,
          subject: event.subject,
          id: event.id,
          deliveryAttempt: event.deliveryAttempt,
        });
        try {
          await options.handle?.(event);
        } catch (err) {
          ackFailures.add(`handler:${codeOf(err)}`);
          continue;
        }
        if (options.ack === false) continue;
        try {
          await event.ack();
        } catch (err) {
          ackFailures.add(codeOf(err));
        }
      }
      return undefined;
    } catch (err) {
      return err;
    }
  })();
  return { done, ackFailures, gaps };
}

/**
 * Reads every message of `stream` by sequence (direct from the stream leader,
 * no consumer involved) and returns the sequences stored under each
 * idempotency key.
 */
export async function readStreamKeys(nc: NatsConnection, stream: string): Promise<Map<string, number[]>> {
  const jsm = await jetstreamManager(nc, { timeout: 5_000 });
  const { state } = await jsm.streams.info(stream);
  const keys = new Map<string, number[]>();
  if (state.messages === 0) return keys;
  const read = async (seq: number): Promise<void> => {
    const m = await jsm.streams.getMessage(stream, { seq });
    if (m === null) return; // deleted
    const key = m.header?.get("Nats-Msg-Id") || `<no key: ${seq}>`;
    const seqs = keys.get(key);
    if (seqs === undefined) keys.set(key, [seq]);
    else seqs.push(seq);
  };
  const concurrency = 64;
  for (let first = state.first_seq; first <= state.last_seq; first += concurrency) {
    const batch: Promise<void>[] = [];
    for (let seq = first; seq < first + concurrency && seq <= state.last_seq; seq++) batch.push(read(seq));
    await Promise.all(batch);
  }
  return keys;
}

/** Settles like `work`, or rejects after `ms` (the timer is always cleared). */
export async function within<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Collects a subscription's statuses in the background until it closes. */
export function collectStatuses(sub: Subscription): SubscriptionStatus[] {
  const seen: SubscriptionStatus[] = [];
  void (async () => {
    for await (const status of sub.status()) seen.push(status);
  })();
  return seen;
}

/** Milliseconds since `start` (a `performance.now()`), rounded. */
export function since(start: number): number {
  return Math.round(performance.now() - start);
}

/** One server per file, with a connection, its JetStream manager and an events client; stopped after the file. */
export interface FaultServer {
  server: NatsServer;
  nc: NatsConnection;
  jsm: JetStreamManager;
  events: Events;
}

/** Starts a {@link FaultServer} before the file's tests. */
export function useFaultServer(): FaultServer {
  const env = {} as FaultServer;
  beforeAll(async () => {
    env.server = await startNatsServer();
    env.nc = await connectTo(env.server.url);
    env.jsm = await jetstreamManager(env.nc);
    env.events = createEvents(env.nc);
  });
  afterAll(async () => {
    await env.nc?.close().catch(() => {});
    await env.server?.stop();
  });
  return env;
}

/** Waits up to 30 s for every acked publish to have been handled. */
export async function allHandled(history: History): Promise<void> {
  await waitFor(() => history.allHandled(), {
    timeoutMs: 30_000,
    intervalMs: 50,
    what: `every acked event handled (missing ${history.missing().length})`,
  });
}

/** Nothing acked was lost, nothing unpublished was handled, and every handled event matches its publish ack. */
export function expectIntact(result: HistoryReport): void {
  expect(result.lost).toEqual([]);
  expect(result.unexpected).toEqual([]);
  expect(result.mismatched).toEqual([]);
}
