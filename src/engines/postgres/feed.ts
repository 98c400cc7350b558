/**
 * One feed of the PostgreSQL engine: a consumer's deliveries claimed for one
 * sink. It claims as many as the sink has room for, in one statement
 * (`claim()`, which never hands two feeds the same event), and when the
 * consumer has nothing more it waits for a wake-up: a notification of a new
 * event in its stream, a settlement that freed room or made an event due,
 * the earliest lease of the consumer running out, or at the latest
 * `pollIntervalMs`, the safety net for everything else (a notification
 * lost, another process's nak).
 *
 * @module
 */

import { ErrorCode, isWindshiftError, type WindshiftError } from "../../errors.js";
import { realClock, type TimerHandle } from "../../internal/clock.js";
import type { Logger } from "../../internal/logger.js";
import type { Feed, FeedSink } from "../engine.js";
import { consumerGone } from "../errors.js";
import { type Database, quoted } from "./database.js";
import { type Claimed, claim } from "./deliveries.js";
import { PostgresDelivery } from "./delivery.js";
import type { SettlementQueue } from "./settlements.js";

/** The shortest wait for a due event before claiming again. */
const MIN_WAIT_MS = 10;

/** What a feed needs from its engine. */
export interface FeedHost {
  readonly db: Database;
  readonly schema: string;
  readonly logger: Logger;
  readonly pollIntervalMs: number;
  /** Whether the engine was closed. */
  isClosed(): boolean;
  /** The settlement queue of a consumer (one per consumer and engine). */
  queue(stream: string, consumer: string): SettlementQueue;
  /** The feed stopped or ended: send it no more wake-ups. */
  feedStopped(feed: PostgresFeed): void;
}

/** Deliveries of one consumer to one sink. */
export class PostgresFeed implements Feed {
  readonly stream: string;
  readonly consumer: string;
  readonly #host: FeedHost;
  readonly #sink: FeedSink;
  readonly #limit: number;
  readonly #queue: SettlementQueue;
  readonly #nextDueSql: string;
  #running: Promise<void> | undefined;
  /** A wake-up came while a run was on: run again. */
  #again = false;
  /** The last claim filled the room it had: more may be waiting once the sink has room. */
  #starved = false;
  /** A claim succeeded once: a missing consumer later means it went away. */
  #claimedOnce = false;
  /** Claims are failing (the database cannot answer); the sink hears when they work again. */
  #failing = false;
  #stopped = false;
  #timer: TimerHandle | undefined;
  #timerAt = Number.POSITIVE_INFINITY;
  /** The consumer's inactiveThresholdMs, once read: a feed claims (or only touches it) twice within it. */
  #idleMs: number | undefined;

  constructor(host: FeedHost, stream: string, consumer: string, sink: FeedSink, limit: number) {
    this.#host = host;
    this.stream = stream;
    this.consumer = consumer;
    this.#sink = sink;
    this.#limit = limit;
    this.#queue = host.queue(stream, consumer);
    const s = quoted(host.schema);
    this.#nextDueSql =
      `SELECT (SELECT ceil(extract(epoch FROM min(d.due_at) - clock_timestamp()) * 1000)::float8 ` +
      `          FROM ${s}.deliveries d WHERE d.consumer = c.id) AS wait, ` +
      `       (c.config ->> 'inactiveThresholdMs')::float8 AS idle ` +
      `FROM ${s}.consumer_row($1, $2) c`;
  }

  /** Looks for deliveries now (or as soon as the current look ends). */
  wake(): void {
    if (this.#stopped) return;
    if (this.#running !== undefined) {
      this.#again = true;
      return;
    }
    this.#running = this.#run()
      .catch((err: unknown) => {
        // Nothing in a run is meant to throw; should something, the next wake-up tries again.
        this.#host.logger.error("a PostgreSQL feed failed unexpectedly", { stream: this.stream, error: String(err) });
        this.wakeIn(this.#host.pollIntervalMs);
      })
      .finally(() => {
        this.#running = undefined;
        // A wake-up after the run's last claim (while it asked how long to wait) would be lost.
        if (this.#again) this.wake();
      });
  }

  /** Looks again once `ms` passed, unless it looks sooner. */
  wakeIn(ms: number): void {
    if (this.#stopped) return;
    const at = realClock.now() + Math.max(0, ms);
    if (at >= this.#timerAt) return;
    realClock.clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = realClock.setTimeout(() => {
      this.#timerAt = Number.POSITIVE_INFINITY;
      this.wake();
    }, ms);
  }

  /** The sink has room again: claim more when the last claim was cut short by the room, and half of it is free. */
  pull(): void {
    if (!this.#starved || this.#stopped) return;
    const room = this.#limit - this.#sink.buffered();
    if (room >= Math.max(1, Math.floor(this.#limit / 2))) this.wake();
  }

  async stop(): Promise<void> {
    if (!this.#stopped) this.#end();
    await this.#running;
  }

  async flush(): Promise<void> {
    await this.#queue.flush();
  }

  /** The engine closed: no more deliveries. */
  closed(): void {
    if (this.#stopped) return;
    this.#end();
    queueMicrotask(() => this.#sink.ended());
  }

  #end(): void {
    this.#stopped = true;
    realClock.clearTimeout(this.#timer);
    this.#timerAt = Number.POSITIVE_INFINITY;
    this.#host.feedStopped(this);
  }

  async #run(): Promise<void> {
    let caughtUp = false;
    do {
      this.#again = false;
      const room = this.#limit - this.#sink.buffered();
      if (room <= 0) {
        this.#starved = true;
        // A full sink still uses the consumer: an empty claim keeps it from going inactive.
        if (this.#idleMs !== undefined && (await this.#claim(0)) === undefined) return;
        break;
      }
      const claimed = await this.#claim(room);
      if (claimed === undefined) return;
      if (this.#stopped) {
        // Claimed for a feed that stopped meanwhile: given back at once, in order (after the engine
        // closed they cannot be: they come again after the processing timeout).
        if (!this.#host.isClosed()) for (const c of claimed) this.#queue.send(c.id, "release", 0);
        return;
      }
      for (const c of claimed) this.#sink.deliver(new PostgresDelivery(this.#queue, c, c.headers));
      this.#starved = claimed.length === room;
      caughtUp = !this.#starved;
      if (this.#starved) this.#again = true;
    } while (this.#again && !this.#stopped);
    if (this.#stopped) return;
    this.wakeIn(Math.min(caughtUp ? await this.#untilDue() : this.#host.pollIntervalMs, this.#keepAliveMs()));
  }

  /** How often the consumer must be claimed from to stay active. */
  #keepAliveMs(): number {
    return this.#idleMs === undefined ? Number.POSITIVE_INFINITY : Math.max(MIN_WAIT_MS, this.#idleMs / 2);
  }

  /** Claims up to `max`; `undefined` when the feed ended or the claim failed (a retry is scheduled). */
  async #claim(max: number): Promise<Claimed[] | undefined> {
    const { db, schema, logger, pollIntervalMs } = this.#host;
    try {
      const claimed = await claim(db, schema, this.stream, this.consumer, max);
      this.#claimedOnce = true;
      if (this.#failing) {
        this.#failing = false;
        logger.info("claiming deliveries works again", { stream: this.stream, consumer: this.consumer });
        if (!this.#stopped) this.#sink.report({ type: "reconnected" });
      }
      return claimed;
    } catch (err) {
      if (this.#stopped) return undefined;
      const error = err as WindshiftError;
      if (isWindshiftError(err) && error.code === ErrorCode.NotFound) {
        this.#end();
        this.#sink.fail(this.#claimedOnce ? consumerGone(this.stream, this.consumer) : error);
        return undefined;
      }
      if (!this.#failing) {
        this.#failing = true;
        logger.warn("cannot claim deliveries; trying again", {
          stream: this.stream,
          consumer: this.consumer,
          error: String(err),
        });
      }
      this.wakeIn(pollIntervalMs);
      return undefined;
    }
  }

  /** How long until the consumer's earliest lease or delay runs out, at most `pollIntervalMs`. */
  async #untilDue(): Promise<number> {
    const { db, pollIntervalMs } = this.#host;
    try {
      const result = await db.query<{ wait: number | null; idle: number | null }>(this.#nextDueSql, [
        this.stream,
        this.consumer,
      ]);
      const wait = result.rows[0]?.wait;
      this.#idleMs = result.rows[0]?.idle ?? undefined;
      // At least a few milliseconds: a due row another feed holds for a moment must not make this one spin.
      return wait === null || wait === undefined
        ? pollIntervalMs
        : Math.min(pollIntervalMs, Math.max(MIN_WAIT_MS, wait));
    } catch {
      // The next claim reports what is wrong.
      return pollIntervalMs;
    }
  }
}
