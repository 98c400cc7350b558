/**
 * One consumer of the memory engine: its position, unsettled events, feeds
 * and timers. Deliveries go out in a microtask, coalesced per consumer, so
 * that no sink method runs inside `append`, `pull`, `send` or
 * `ensureConsumer`. Two clock timers at most per consumer: the earliest
 * processing deadline and the earliest nak delay.
 *
 * @module
 */

import type { WindshiftError } from "../../errors.js";
import type { Clock, TimerHandle } from "../../internal/clock.js";
import type { ConsumerConfig, ConsumerState, Feed, FeedSink, SettleKind } from "../engine.js";
import { filterMatcher, type SubjectMatcher } from "../subjects.js";
import { MemoryDelivery, type Settler } from "./delivery.js";
import type { StoredRecord } from "./event-log.js";
import { closedError } from "./failures.js";
import { type FeedOwner, MemoryFeed } from "./feed.js";
import { type PendingEvent, PendingSet } from "./pending.js";
import type { MemoryStream, StreamListener } from "./stream.js";

/** What a consumer needs from its engine. */
export interface ConsumerHost {
  readonly clock: Clock;
  isClosed(): boolean;
}

/** How a removed consumer's feeds are told. */
export interface ConsumerEnd {
  /** Fail the feeds with this; without it they hear `ended()` (the engine closed). */
  readonly error?: WindshiftError;
}

/** A consumer's delivery state machine. */
export class MemoryConsumer implements StreamListener, Settler, FeedOwner {
  readonly name: string;
  readonly stream: MemoryStream;
  readonly #host: ConsumerHost;
  readonly #pending = new PendingSet();
  #config: ConsumerConfig;
  #filter: SubjectMatcher | undefined;
  /** The next stream id to look at for a first delivery. */
  #nextId: number;
  #feeds: readonly MemoryFeed[] = [];
  #turn = 0;
  #scheduled = false;
  /** Held back by `maxUnsettledEvents`: a settlement must look again. */
  #blocked = false;
  #ackTimer: TimerHandle | undefined;
  #nakTimer: TimerHandle | undefined;
  #nakTimerAt = Number.POSITIVE_INFINITY;
  /** Since when no feed has been attached. */
  #idleSince: number;
  #removed = false;

  constructor(host: ConsumerHost, stream: MemoryStream, name: string, config: ConsumerConfig) {
    this.#host = host;
    this.stream = stream;
    this.name = name;
    this.#config = Object.freeze({ ...config, subjects: Object.freeze([...config.subjects]) });
    this.#filter = filterMatcher(config.subjects);
    this.#idleSince = host.clock.now();
    const from = config.from;
    if (from.kind === "start") this.#nextId = stream.firstId();
    else if (from.kind === "end") this.#nextId = stream.lastId + 1;
    // As nats-server does, a start beyond the stream's end is the next event stored.
    else if (from.kind === "id") this.#nextId = Math.min(from.id, stream.lastId + 1);
    else this.#nextId = stream.firstIdAtOrAfter(from.time.getTime());
    stream.listen(this);
  }

  /** The configuration as held. */
  get config(): ConsumerConfig {
    return this.#config;
  }

  /**
   * Its configuration and progress. The last delivered id is the position
   * less one, as nats-server's `delivered.stream_seq`: the last event handed
   * out, or the id before where the consumer started, or the last id looked
   * past (filtered out or removed).
   */
  state(): ConsumerState {
    const lowest = this.#pending.lowestId();
    return {
      stream: this.stream.name,
      name: this.name,
      config: this.#config,
      // Every event up to this id is settled, was skipped by the filter, or is gone.
      ackFloor: lowest === undefined ? this.#nextId - 1 : lowest - 1,
      unsettled: this.#pending.size,
      pending: this.#undelivered(),
      redelivered: this.#pending.redeliveredCount(),
      lastDeliveredId: this.#nextId - 1,
    };
  }

  /** A purge removed every event below `firstId`: the position moves past them, as on the server. */
  passPurged(firstId: number): void {
    this.#nextId = Math.max(this.#nextId, firstId);
  }

  /** Matching events not delivered yet. */
  #undelivered(): number {
    let count = 0;
    const last = this.stream.lastId;
    for (let id = Math.max(this.#nextId, this.stream.firstId()); id <= last; id++) {
      const record = this.stream.get(id);
      if (record !== undefined && (this.#filter === undefined || this.#filter(record.subject))) count++;
    }
    return count;
  }

  /** Whether `inactiveThresholdMs` has passed without a feed. */
  isIdle(now: number): boolean {
    const threshold = this.#config.inactiveThresholdMs;
    return threshold !== undefined && this.#feeds.length === 0 && now - this.#idleSince >= threshold;
  }

  /** Takes `config`, keeping the position (and the start it was created with) and what is pending. */
  update(config: ConsumerConfig): void {
    const timeoutChanged = config.processingTimeoutMs !== this.#config.processingTimeoutMs;
    this.#config = Object.freeze({ ...config, subjects: Object.freeze([...config.subjects]), from: this.#config.from });
    this.#filter = filterMatcher(config.subjects);
    this.#idleSince = this.#host.clock.now();
    if (timeoutChanged && this.#ackTimer !== undefined) {
      this.#host.clock.clearTimeout(this.#ackTimer);
      this.#ackTimer = undefined;
      this.#armAckTimer();
    }
    this.#schedule();
  }

  /** Attaches a sink. */
  attach(sink: FeedSink, limit: number): Feed {
    const feed = new MemoryFeed(sink, limit, this);
    this.#feeds = [...this.#feeds, feed];
    this.#schedule();
    return feed;
  }

  /** Removes the consumer: clears its timers and ends its feeds. */
  remove(end: ConsumerEnd): void {
    if (this.#removed) return;
    this.#removed = true;
    this.stream.unlisten(this);
    const clock = this.#host.clock;
    if (this.#ackTimer !== undefined) clock.clearTimeout(this.#ackTimer);
    if (this.#nakTimer !== undefined) clock.clearTimeout(this.#nakTimer);
    const { error } = end;
    for (const feed of this.#feeds) feed.end((sink) => (error === undefined ? sink.ended() : sink.fail(error)));
    this.#feeds = [];
  }

  eventStored(): void {
    if (this.#feeds.length > 0 && !this.#blocked) this.#schedule();
  }

  /** A pending event that leaves the stream is settled: it cannot be delivered again. */
  eventRemoved(_stream: MemoryStream, record: StoredRecord): void {
    const event = this.#pending.get(record.id);
    if (event !== undefined) this.#settled(event);
  }

  feedPulled(): void {
    this.#schedule();
  }

  feedStopped(feed: MemoryFeed): void {
    this.#feeds = this.#feeds.filter((f) => f !== feed);
    if (this.#feeds.length === 0) this.#idleSince = this.#host.clock.now();
  }

  settle(id: number, kind: SettleKind, delayMs: number): void {
    if (this.#host.isClosed()) throw closedError();
    const event = this.#removed ? undefined : this.#pending.get(id);
    if (event === undefined) return; // settled already, or gone: nothing to do, as on the server
    const now = this.#host.clock.now();
    switch (kind) {
      case "ack":
      case "term":
        this.#settled(event);
        return;
      case "progress":
        this.#pending.touch(event, now);
        return;
      case "nak":
        this.#giveBack(event, delayMs, now);
        return;
      case "release":
        this.#giveBack(event, 0, now);
    }
  }

  /** Redeliver `event` after `delayMs`, unless it has had its attempts or left the stream. */
  #giveBack(event: PendingEvent, delayMs: number, now: number): void {
    const max = this.#config.maxDeliveryAttempts;
    this.stream.expire(now);
    if ((max !== undefined && event.attempts >= max) || this.stream.get(event.id) === undefined) {
      this.#settled(event);
    } else if (delayMs > 0) {
      this.#pending.delay(event, now + delayMs);
      this.#armNakTimer();
    } else {
      this.#pending.makeDue(event);
      this.#schedule();
    }
  }

  #settled(event: PendingEvent): void {
    this.#pending.drop(event);
    if (this.#blocked) this.#schedule();
  }

  #schedule(): void {
    if (this.#scheduled || this.#removed) return;
    this.#scheduled = true;
    queueMicrotask(this.#dispatch);
  }

  /** Hands deliveries to feeds with credit, round-robin, until either runs out. */
  readonly #dispatch = (): void => {
    this.#scheduled = false;
    if (this.#removed || this.#feeds.length === 0) return;
    const now = this.#host.clock.now();
    this.stream.expire(now);
    for (const feed of this.#feeds) if (feed.wantsRoom) feed.refill();
    for (;;) {
      const feed = this.#feedWithCredit();
      if (feed === undefined) return;
      const delivery = this.#next(now);
      if (delivery === undefined) return;
      feed.credit--;
      feed.sink.deliver(delivery);
    }
  };

  #feedWithCredit(): MemoryFeed | undefined {
    if (this.#removed) return undefined;
    const feeds = this.#feeds;
    for (let i = 0; i < feeds.length; i++) {
      const index = (this.#turn + i) % feeds.length;
      const feed = feeds[index] as MemoryFeed;
      if (feed.credit > 0 && !feed.stopped) {
        this.#turn = index + 1;
        return feed;
      }
    }
    return undefined;
  }

  /** The next delivery: due redeliveries first, then new events while under `maxUnsettledEvents`. */
  #next(now: number): MemoryDelivery | undefined {
    for (let event = this.#pending.takeDue(); event !== undefined; event = this.#pending.takeDue()) {
      const record = this.stream.get(event.id);
      if (record === undefined) {
        this.#pending.drop(event);
        continue;
      }
      this.#pending.redelivered(event, now);
      return this.#deliver(record, event);
    }
    this.#blocked = this.#pending.size >= this.#config.maxUnsettledEvents;
    if (this.#blocked) return undefined;
    const last = this.stream.lastId;
    let id = Math.max(this.#nextId, this.stream.firstId());
    while (id <= last) {
      const record = this.stream.get(id++);
      if (record !== undefined && (this.#filter === undefined || this.#filter(record.subject))) {
        this.#nextId = id;
        return this.#deliver(record, this.#pending.delivered(record.id, now));
      }
    }
    this.#nextId = id;
    return undefined;
  }

  #deliver(record: StoredRecord, event: PendingEvent): MemoryDelivery {
    this.#armAckTimer();
    return new MemoryDelivery(
      this,
      {
        id: record.id,
        subject: record.subject,
        stream: this.stream.name,
        consumer: this.name,
        deliveryAttempt: event.attempts,
        payload: record.payload,
      },
      record.headers,
    );
  }

  /**
   * Arms the processing timer at the earliest deadline, unless armed: an
   * armed timer is never later than that (deadlines only grow along the
   * in-flight order), so settlements need not re-arm it.
   */
  #armAckTimer(): void {
    if (this.#ackTimer !== undefined || this.#removed) return;
    const first = this.#pending.firstInFlight();
    if (first === undefined) return;
    const clock = this.#host.clock;
    const wait = first.touchedAt + this.#config.processingTimeoutMs - clock.now();
    this.#ackTimer = clock.setTimeout(this.#onAckTimer, Math.max(0, wait));
  }

  readonly #onAckTimer = (): void => {
    this.#ackTimer = undefined;
    if (this.#removed) return;
    const now = this.#host.clock.now();
    // Expired together: redelivered in id order, as nats-server does.
    for (const event of this.#pending.touchedBy(now - this.#config.processingTimeoutMs)) {
      this.#giveBack(event, 0, now);
    }
    this.#armAckTimer();
  };

  #armNakTimer(): void {
    const at = this.#pending.nextDelayedAt();
    if (at === undefined || this.#removed || (this.#nakTimer !== undefined && this.#nakTimerAt <= at)) return;
    const clock = this.#host.clock;
    if (this.#nakTimer !== undefined) clock.clearTimeout(this.#nakTimer);
    this.#nakTimerAt = at;
    this.#nakTimer = clock.setTimeout(this.#onNakTimer, Math.max(0, at - clock.now()));
  }

  readonly #onNakTimer = (): void => {
    this.#nakTimer = undefined;
    this.#nakTimerAt = Number.POSITIVE_INFINITY;
    if (this.#removed) return;
    if (this.#pending.releaseDelayed(this.#host.clock.now()) > 0) this.#schedule();
    this.#armNakTimer();
  };
}
