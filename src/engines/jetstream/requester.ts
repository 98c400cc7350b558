import { createInbox, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from "@nats-io/nats-core";
import { ErrorCode, WindshiftError } from "../../errors.js";
import { abortError } from "../../internal/abort.js";
import type { Denials } from "./denials.js";
import { type Denial, isClosed, permissionViolation } from "./errors.js";

/** How often pending publishes are checked for their timeout. */
const SWEEP_MS = 20;

/** How a request's failures are described; built by the caller. */
export interface RequestFailures {
  /** Nobody listens on the subject. */
  noResponders(): WindshiftError;
  /** No reply in time. */
  timeout(): WindshiftError;
  /** The connection is closed. */
  closed(): WindshiftError;
  /**
   * The server refused it: the user may not publish to the request's subject,
   * or subscribe to the inbox its reply would come to (`PERMISSION_DENIED`).
   */
  denied(denial: Denial, cause: unknown): WindshiftError;
}

interface Pending {
  resolve(msg: Msg): void;
  reject(err: WindshiftError): void;
  deadline: number;
  failures: RequestFailures;
  /** Where it was sent: a denial of this subject fails it. */
  subject: string;
}

/** One request's settings. */
export interface RequestOptions {
  readonly headers: MsgHdrs | undefined;
  readonly timeoutMs: number;
  readonly signal: AbortSignal | undefined;
  /** How its failures are described. */
  readonly failures: RequestFailures;
}

/** How a {@link Requester} behaves. */
export interface RequesterOptions {
  /** At most this many requests await their reply; more wait for room. */
  readonly maxInFlight: number;
  /**
   * While other requests await their reply, send new ones together at the
   * end of the event-loop turn (one socket write for many instead of one
   * each, for that turn's latency): for confirmed acks, which concurrent
   * handlers finish in many separate turns.
   */
  readonly coalesce: boolean;
}

/** A request waiting for the next batch (see `coalesce`). */
interface Outgoing {
  token: string;
  subject: string;
  payload: Uint8Array;
  headers: MsgHdrs | undefined;
}

/**
 * Request/reply for publishes and confirmed acks: plain messages with a reply
 * subject on one shared inbox subscription, so that many can be in flight at
 * little cost: a map of pending replies, one sweeping timer for all timeouts,
 * and a bounded window (a request waits for room rather than growing memory
 * without end).
 *
 * nats.js's `request()` does the same job with a timer, an inbox token and an
 * error object (with a captured stack) per call; at thousands in flight that
 * bookkeeping is most of the cost of a publish.
 */
export class Requester {
  readonly #nc: NatsConnection;
  readonly #denials: Denials;
  #unlisten: (() => void) | undefined;
  readonly #maxInFlight: number;
  readonly #prefix: string;
  readonly #pending = new Map<string, Pending>();
  readonly #waiting: (() => void)[] = [];
  #sub: Subscription | undefined;
  #status: { stop(): void } | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #next = 0;
  #closed = false;
  readonly #coalesce: boolean;
  #outbox: Outgoing[] = [];
  readonly #flushOutbox = (): void => {
    const outbox = this.#outbox;
    this.#outbox = [];
    for (const o of outbox) {
      const p = this.#pending.get(o.token);
      if (p === undefined) continue; // aborted or failed meanwhile
      this.#send(o.token, p, o.subject, o.payload, o.headers);
    }
  };

  /** `denials` reports the permission violations of `nc` (see {@link Denials}). */
  constructor(nc: NatsConnection, denials: Denials, options: RequesterOptions) {
    this.#nc = nc;
    this.#denials = denials;
    this.#maxInFlight = options.maxInFlight;
    this.#coalesce = options.coalesce;
    const { inboxPrefix } = (nc as { options?: { inboxPrefix?: string } }).options ?? {};
    this.#prefix = `${createInbox(inboxPrefix)}.`;
  }

  /** How many requests await their reply. */
  get inFlight(): number {
    return this.#pending.size;
  }

  /**
   * Sends and resolves with the reply. Rejects with the caller's `failures`,
   * or `ABORTED`.
   */
  request(subject: string, payload: Uint8Array, options: RequestOptions): Promise<Msg> {
    // Not an async function: with room in the window (the usual case), the
    // request's promise is the only one, and nothing else stays alive with it
    // until the reply.
    if (this.#pending.size >= this.#maxInFlight) {
      return this.#room(options.signal).then(() => this.#request(subject, payload, options));
    }
    return this.#request(subject, payload, options);
  }

  #request(subject: string, payload: Uint8Array, options: RequestOptions): Promise<Msg> {
    const { headers, timeoutMs, signal, failures } = options;
    if (this.#closed || this.#nc.isClosed()) return Promise.reject(failures.closed());
    try {
      this.#start();
    } catch (err) {
      return Promise.reject(err);
    }
    const token = (this.#next++).toString(36);
    return new Promise<Msg>((resolve, reject) => {
      const pending: Pending = { resolve, reject, deadline: performance.now() + timeoutMs, failures, subject };
      // A lone request goes out at once; with others in flight, waiting for
      // the end of the turn costs little and saves a socket write each.
      const batch = this.#coalesce && (this.#pending.size > 0 || this.#outbox.length > 0);
      this.#pending.set(token, pending);
      if (batch) {
        this.#outbox.push({ token, subject, payload, headers });
        if (this.#outbox.length === 1) setImmediate(this.#flushOutbox);
      } else if (!this.#send(token, pending, subject, payload, headers)) {
        return;
      }
      if (signal !== undefined) {
        const onAbort = (): void => {
          if (this.#settle(token)) reject(abortError(signal));
        };
        signal.addEventListener("abort", onAbort, { once: true });
        const done = (): void => signal.removeEventListener("abort", onAbort);
        pending.resolve = (msg) => {
          done();
          resolve(msg);
        };
        pending.reject = (err) => {
          done();
          reject(err);
        };
      }
    });
  }

  /** Publishes one request; on failure settles and rejects it, and returns false. */
  #send(token: string, pending: Pending, subject: string, payload: Uint8Array, headers: MsgHdrs | undefined): boolean {
    const reply = this.#prefix + token;
    try {
      this.#nc.publish(subject, payload, headers === undefined ? { reply } : { reply, headers });
      return true;
    } catch (err) {
      this.#settle(token);
      pending.reject(
        isClosed(err)
          ? pending.failures.closed()
          : new WindshiftError(ErrorCode.Validation, `data: ${(err as Error).message}`, {
              cause: err,
              details: { field: "data" },
            }),
      );
      return false;
    }
  }

  /** Fails what is pending and stops the inbox and the timer. */
  close(): void {
    this.#closed = true;
    this.#sub?.unsubscribe();
    this.#sub = undefined;
    this.#status?.stop();
    this.#unlisten?.();
    this.#unlisten = undefined;
    for (const [token, p] of this.#pending) {
      this.#settle(token);
      p.reject(p.failures.closed());
    }
    this.#stopTimer();
    for (const wake of this.#waiting.splice(0)) wake();
  }

  #start(): void {
    if (this.#sub === undefined) {
      const sub = this.#nc.subscribe(`${this.#prefix}*`, {
        callback: (err, msg) => {
          if (err === null) this.#onReply(msg);
          else if (permissionViolation(err) !== undefined) this.#inboxDenied(sub, err);
          else this.close();
        },
      });
      this.#sub = sub;
      if (this.#unlisten === undefined) {
        this.#unlisten = this.#denials.listen((denial, cause) => this.#onDenied(denial, cause));
        void this.#nc.closed().then(() => this.close());
        void this.#watchDisconnects();
      }
    }
    if (this.#timer === undefined) {
      this.#timer = setInterval(() => this.#sweep(), SWEEP_MS);
      this.#timer.unref?.();
    }
  }

  /**
   * A request in flight when the connection drops will get no reply: fail it
   * now (its outcome is unknown) instead of after its whole timeout, so that a
   * retry can go out as soon as the connection is back. The same for requests
   * sent while disconnected: nats.js replays them after the reconnect, but a
   * server that has just restarted may drop them without a word (measured:
   * the reply never came and the publish waited out its 5 s timeout).
   */
  async #watchDisconnects(): Promise<void> {
    const status = this.#nc.status();
    this.#status = status as unknown as { stop(): void };
    for await (const s of status) {
      if (this.#closed) return;
      if (s.type !== "disconnect" && s.type !== "reconnect") continue;
      for (const [token, p] of this.#pending) {
        this.#settle(token);
        p.reject(p.failures.timeout());
      }
    }
  }

  /**
   * The server refused a publish: fails every request sent to that subject
   * (each would be refused the same way). Another requester's, or nobody's,
   * when none is pending here.
   */
  #onDenied(denial: Denial, cause: Error): boolean {
    if (denial.operation === "subscribe") return denial.subject === `${this.#prefix}*`;
    let mine = false;
    for (const [token, p] of this.#pending) {
      if (p.subject !== denial.subject || !this.#settle(token)) continue;
      mine = true;
      p.reject(p.failures.denied(denial, cause));
    }
    return mine;
  }

  /**
   * The server refused the inbox subscription: no reply can come, so every
   * pending request fails at once. nats.js has dropped the subscription; the
   * next request subscribes again (the permissions may have changed by then).
   */
  #inboxDenied(sub: Subscription, err: Error): void {
    if (this.#sub === sub) this.#sub = undefined;
    const denial: Denial = { operation: "subscribe", subject: `${this.#prefix}*` };
    for (const [token, p] of this.#pending) {
      this.#settle(token);
      p.reject(p.failures.denied(denial, err));
    }
  }

  #onReply(msg: Msg): void {
    const token = msg.subject.slice(this.#prefix.length);
    const p = this.#pending.get(token);
    if (p === undefined || !this.#settle(token)) return; // late reply after a timeout or abort
    if (msg.data.length === 0 && msg.headers?.code === 503) {
      p.reject(p.failures.noResponders());
    } else {
      p.resolve(msg);
    }
  }

  #sweep(): void {
    const now = performance.now();
    for (const [token, p] of this.#pending) {
      if (p.deadline > now) continue;
      this.#settle(token);
      p.reject(p.failures.timeout());
    }
    if (this.#pending.size === 0) this.#stopTimer();
  }

  /** Removes a pending publish; false when it was already settled. */
  #settle(token: string): boolean {
    if (!this.#pending.delete(token)) return false;
    const wake = this.#waiting.shift();
    if (wake !== undefined) wake();
    return true;
  }

  #stopTimer(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  async #room(signal: AbortSignal | undefined): Promise<void> {
    while (this.#pending.size >= this.#maxInFlight && !this.#closed) {
      if (signal?.aborted) throw abortError(signal);
      await new Promise<void>((resolve, reject) => {
        const onAbort = (): void => {
          const i = this.#waiting.indexOf(wake);
          if (i >= 0) this.#waiting.splice(i, 1);
          reject(abortError(signal as AbortSignal));
        };
        const wake = (): void => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        };
        this.#waiting.push(wake);
        signal?.addEventListener("abort", onAbort, { once: true });
      });
    }
  }
}
