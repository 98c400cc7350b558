import { createInbox, type Msg, type NatsConnection, type Subscription } from "@nats-io/nats-core";
import { ErrorCode, WindshiftError } from "../../errors.js";
import type { Logger } from "../../internal/logger.js";
import type { Feed, FeedSink } from "../engine.js";
import { consumerGone } from "../errors.js";
import { deliveryFacts } from "./ack-subject.js";
import { JetStreamDelivery, type Settlements } from "./delivery.js";
import type { Denials } from "./denials.js";
import { type Denial, permissionDenied, permissionViolation } from "./errors.js";

/** Settings of one puller. */
export interface PullSettings {
  readonly stream: string;
  readonly consumer: string;
  /** At most this many messages are buffered or requested at a time. */
  readonly limit: number;
  /** How long one pull request waits on the server. */
  readonly expiresMs: number;
}

/** What a puller works with besides its settings. */
export interface PullContext {
  readonly nc: NatsConnection;
  readonly logger: Logger;
  readonly settlements: Settlements;
  /** The connection's permission violations: a refused pull request or inbox ends the feed. */
  readonly denials: Denials;
  /** Whether the consumer still exists (asked after missed heartbeats). */
  exists(): Promise<boolean>;
}

const MIN_HEARTBEAT_MS = 500;
const RETRY_PULL_MS = 1_000;
/** How long stopping waits for the server to see the unsubscribe. */
const FLUSH_MS = 1_000;

/**
 * Pulls messages for one consumer with JetStream's pull API directly: one inbox
 * subscription, pull requests sized so that what is buffered plus what is
 * requested never exceeds `limit` (events waiting in a deep client buffer would
 * burn their processing timeout), idle heartbeats that reveal a dead pull, and a
 * fresh pull after every reconnect.
 */
export class Puller implements Feed {
  readonly #nc: NatsConnection;
  readonly #settings: PullSettings;
  readonly #target: FeedSink;
  readonly #context: PullContext;
  readonly #logger: Logger;
  readonly #inbox: string;
  readonly #heartbeatMs: number;
  readonly #nextSubject: string;
  #sub: Subscription | undefined;
  #statusIterator: { stop(): void } | undefined;
  #unlisten: (() => void) | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #retry: ReturnType<typeof setTimeout> | undefined;
  /** Messages requested and not yet received. */
  #outstanding = 0;
  #lastActivity = performance.now();
  #checking = false;
  #stopped = false;

  constructor(context: PullContext, settings: PullSettings, target: FeedSink) {
    const nc = context.nc;
    this.#nc = nc;
    this.#context = context;
    this.#settings = settings;
    this.#target = target;
    this.#logger = context.logger;
    this.#inbox = createInbox((nc as { options?: { inboxPrefix?: string } }).options?.inboxPrefix);
    this.#heartbeatMs = Math.max(MIN_HEARTBEAT_MS, Math.floor(settings.expiresMs / 2));
    this.#nextSubject = `$JS.API.CONSUMER.MSG.NEXT.${settings.stream}.${settings.consumer}`;
  }

  start(): void {
    this.#unlisten = this.#context.denials.listen((denial, cause) => this.#onDenied(denial, cause));
    this.#sub = this.#nc.subscribe(this.#inbox, {
      callback: (err, msg) => {
        const denial = err === null ? undefined : permissionViolation(err);
        if (denial !== undefined) this.#onDenied(denial, err);
        else if (err) this.#logger.warn("pull subscription error", { error: err.message });
        else this.#onMessage(msg);
      },
    });
    void this.#sub.closed.then(() => {
      if (!this.#stopped) this.#target.ended();
    });
    this.#timer = setInterval(() => this.#checkHeartbeat(), this.#heartbeatMs);
    this.#timer.unref?.();
    void this.#watchConnection();
    this.pull();
  }

  /**
   * Asks for more when there is room for at least half a batch, or when
   * nothing is buffered and nothing is on its way. (Pulling whenever one slot
   * frees up sent a pull request per event to a loop slower than delivery.)
   */
  pull(): void {
    if (this.#stopped) return;
    const room = this.#settings.limit - this.#target.buffered() - this.#outstanding;
    if (room <= 0) return;
    if ((this.#outstanding > 0 || this.#target.buffered() > 0) && room < this.#settings.limit / 2) return;
    const request = {
      batch: room,
      expires: this.#settings.expiresMs * 1_000_000,
      idle_heartbeat: this.#heartbeatMs * 1_000_000,
    };
    try {
      this.#nc.publish(this.#nextSubject, JSON.stringify(request), { reply: this.#inbox });
      this.#outstanding += room;
    } catch {
      // The connection is closed; the subscription ends through its own watch.
    }
  }

  /**
   * Stops pulling: sends queued acks, unsubscribes the inbox, clears every
   * timer, and resolves once the server has dropped this feed's pull request
   * (or after a second or two), so that events released afterwards are not
   * handed to the dead inbox.
   *
   * Seeing the unsubscribe is not enough: nats-server 2.9.10 keeps an
   * unsubscribed pull request until it next checks its waiting requests for
   * interest, and sends the first event that comes due to it, where it is
   * lost until its processing timeout (and the consumer rewinds by one, so a
   * later event comes twice; measured). A consumer info request makes it
   * check.
   */
  async stop(): Promise<void> {
    const first = !this.#stopped;
    if (first) {
      this.#stopped = true;
      this.#context.settlements.flush();
      this.#sub?.unsubscribe();
      this.#statusIterator?.stop();
      this.#unlisten?.();
      if (this.#timer !== undefined) clearInterval(this.#timer);
      if (this.#retry !== undefined) clearTimeout(this.#retry);
    }
    await flushWithin(this.#nc, FLUSH_MS);
    if (first && this.#outstanding > 0) {
      await within(
        this.#context.exists().catch(() => false),
        FLUSH_MS,
      );
    }
  }

  async flush(): Promise<void> {
    this.#context.settlements.flush();
    await flushWithin(this.#nc, FLUSH_MS);
  }

  /**
   * The server refused this feed's pull requests or its inbox: nothing can
   * ever be delivered, so the feed fails (the subscription's loop throws,
   * a processor's `closed` resolves with it) instead of pulling again forever.
   */
  #onDenied(denial: Denial, cause: unknown): boolean {
    const mine = denial.operation === "publish" ? denial.subject === this.#nextSubject : denial.subject === this.#inbox;
    if (!mine) return false;
    if (!this.#stopped) {
      const { stream, consumer } = this.#settings;
      this.#target.fail(
        permissionDenied(`consumer "${stream}"/"${consumer}"`, denial, cause, "no events can be pulled from it"),
      );
    }
    return true;
  }

  #onMessage(msg: Msg): void {
    this.#lastActivity = performance.now();
    const headers = msg.headers;
    if (msg.data.length === 0 && headers !== undefined && headers.code !== 0) {
      this.#onStatus(headers.code, headers.description, headers.get("Nats-Pending-Messages"));
      return;
    }
    if (this.#outstanding > 0) this.#outstanding--;
    const facts = deliveryFacts(msg);
    if (facts === undefined) {
      this.#logger.warn("ignoring a message that is not a JetStream delivery", { subject: msg.subject });
    } else {
      this.#target.deliver(new JetStreamDelivery(msg, facts, this.#context.settlements));
    }
    if (this.#outstanding === 0) this.pull();
  }

  #onStatus(code: number, description: string, pendingText: string): void {
    const text = description.toLowerCase();
    switch (code) {
      case 100: // idle heartbeat
        return;
      case 404: // no messages
      case 408: // request expired
        this.#requestEnded(pendingText);
        this.pull();
        return;
      case 409:
        if (text.includes("consumer deleted")) {
          this.#target.fail(consumerGone(this.#settings.stream, this.#settings.consumer));
          return;
        }
        if (text.includes("consumer is push based")) {
          this.#target.fail(
            new WindshiftError(
              ErrorCode.Validation,
              `consumer "${this.#settings.consumer}" of stream "${this.#settings.stream}" is a push consumer (${description}): windshift reads pull consumers; create one with ensureConsumer`,
            ),
          );
          return;
        }
        if (text.includes("exceeded") || text.includes("exceeds")) {
          this.#logger.warn("pull request refused", { consumer: this.#settings.consumer, reason: description });
          this.#target.report({ type: "pull-refused", reason: description });
        }
        this.#requestEnded(pendingText);
        this.#pullLater();
        return;
      case 503: // JetStream is not answering, e.g. during a restart
        this.#outstanding = 0;
        this.#pullLater();
        return;
      default:
        this.#logger.debug("pull status", { consumer: this.#settings.consumer, code, description });
        this.#requestEnded(pendingText);
        this.pull();
    }
  }

  /** A pull request ended; what it did not deliver is no longer on its way. */
  #requestEnded(pendingText: string): void {
    const pending = Number.parseInt(pendingText, 10);
    this.#outstanding = Number.isNaN(pending) ? 0 : Math.max(0, this.#outstanding - pending);
  }

  #pullLater(): void {
    if (this.#retry !== undefined || this.#stopped) return;
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      this.pull();
    }, RETRY_PULL_MS);
    this.#retry.unref?.();
  }

  /** Two heartbeats without a word from the server: the pull is dead, start over. */
  #checkHeartbeat(): void {
    if (this.#stopped || this.#checking) return;
    if (this.#outstanding === 0 || performance.now() - this.#lastActivity < 2 * this.#heartbeatMs) {
      if (this.#outstanding === 0) this.pull();
      return;
    }
    this.#checking = true;
    this.#logger.warn("heartbeats missed; pulling again", { consumer: this.#settings.consumer });
    this.#target.report({ type: "heartbeats-missed" });
    this.#outstanding = 0;
    this.#lastActivity = performance.now();
    this.#context.exists().then(
      (exists) => {
        this.#checking = false;
        if (exists) this.pull();
        else this.#target.fail(consumerGone(this.#settings.stream, this.#settings.consumer));
      },
      () => {
        this.#checking = false; // unknown: try again at the next check
      },
    );
  }

  async #watchConnection(): Promise<void> {
    const status = this.#nc.status();
    this.#statusIterator = status as unknown as { stop(): void };
    for await (const s of status) {
      if (this.#stopped) return;
      if (s.type === "reconnect") {
        // Pull requests die with the old connection.
        this.#logger.info("reconnected; pulling again", { consumer: this.#settings.consumer });
        this.#target.report({ type: "reconnected" });
        this.#outstanding = 0;
        this.#lastActivity = performance.now();
        this.pull();
      }
    }
  }
}

/** Waits until the server has seen everything sent so far, or `ms` passed. */
async function flushWithin(nc: NatsConnection, ms: number): Promise<void> {
  if (nc.isClosed()) return;
  await within(
    nc.flush().catch(() => {}),
    ms,
  );
}

/** Waits for `work`, or `ms` at most. */
async function within(work: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    work,
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
    }),
  ]);
  clearTimeout(timer);
}
