import type { Msg, NatsConnection } from "@nats-io/nats-core";
import { ErrorCode, WindshiftError } from "../../errors.js";
import { emptyHeaderMap, type HeaderMap, type RawHeaders } from "../../internal/headers.js";
import { Delivery, type DeliveryFacts, type SettleKind } from "../engine.js";
import { type Denial, isClosed, permissionDenied, toWindshiftError } from "./errors.js";
import type { Requester, RequestFailures } from "./requester.js";

const encoder = new TextEncoder();
const ACK = encoder.encode("+ACK");
const NAK = encoder.encode("-NAK");
const TERM = encoder.encode("+TERM");
// JetStream spells "work in progress" +WPI.
const PROGRESS = encoder.encode("+WPI");
/**
 * A release is a nak with a 50 ms delay: nats-server 2.9.10 handles a plain
 * nak of the consumer's newest delivery by rewinding the consumer, and a
 * batch of plain naks then came back out of order, one lost and one twice
 * (measured). Naks with a delay come back in the order they were sent.
 */
const RELEASE = encoder.encode(`-NAK {"delay":${50 * 1_000_000}}`);

/** The ack payload JetStream expects for a settlement. */
export function settlePayload(kind: SettleKind, delayMs: number): Uint8Array {
  switch (kind) {
    case "ack":
      return ACK;
    case "term":
      return TERM;
    case "progress":
      return PROGRESS;
    case "release":
      return RELEASE;
    case "nak":
      return delayMs > 0 ? encoder.encode(`-NAK ${JSON.stringify({ delay: delayMs * 1_000_000 })}`) : NAK;
  }
}

/**
 * Sends the settlements of one connection's deliveries: fire-and-forget acks
 * batched into one socket write per turn of the event loop (acking in a loop
 * otherwise costs a write per event), everything else at once, and confirmed
 * settlements as requests on the reply subject.
 */
export class Settlements {
  readonly #nc: NatsConnection;
  readonly #requester: () => Requester;
  #acks: string[] = [];
  readonly #flushAcks = (): void => this.flush();

  constructor(nc: NatsConnection, requester: () => Requester) {
    this.#nc = nc;
    this.#requester = requester;
  }

  /** Sends the queued acks now. */
  flush(): void {
    const acks = this.#acks;
    if (acks.length === 0) return;
    this.#acks = [];
    for (const reply of acks) {
      try {
        this.#nc.publish(reply, ACK);
      } catch {
        // The connection closed: these events are redelivered after their processing timeout.
      }
    }
  }

  send(reply: string, kind: SettleKind, delayMs: number, id: number): void {
    if (this.#nc.isClosed()) throw new SettleFailures(kind, id).closed();
    if (kind === "ack") {
      this.#acks.push(reply);
      if (this.#acks.length === 1) setImmediate(this.#flushAcks);
      return;
    }
    try {
      this.#nc.publish(reply, settlePayload(kind, delayMs));
    } catch (err) {
      throw isClosed(err) ? new SettleFailures(kind, id).closed() : toWindshiftError(err, `${kind} of event ${id}`);
    }
  }

  async confirm(
    reply: string,
    kind: SettleKind,
    delayMs: number,
    id: number,
    timeoutMs: number,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    // Published to the reply subject directly: nats.js's own ack helpers
    // refuse to send twice, which would turn a retry into a no-op.
    await this.#requester().request(reply, settlePayload(kind, delayMs), {
      headers: undefined,
      timeoutMs,
      signal,
      failures: new SettleFailures(kind, id),
    });
  }
}

/** One JetStream delivery: a message with its parsed reply subject. */
export class JetStreamDelivery extends Delivery {
  readonly #msg: Msg;
  readonly #settlements: Settlements;

  constructor(msg: Msg, facts: DeliveryFacts, settlements: Settlements) {
    super(facts);
    this.#msg = msg;
    this.#settlements = settlements;
  }

  protected readHeaders(): HeaderMap {
    return lookupMap(this.#msg);
  }

  rawHeaders(): RawHeaders {
    const out: [string, string][] = [];
    for (const [name, values] of this.#msg.headers ?? []) for (const value of values) out.push([name, value]);
    return out;
  }

  send(kind: SettleKind, delayMs = 0): void {
    this.#settlements.send(this.#msg.reply as string, kind, delayMs, this.id);
  }

  confirm(kind: SettleKind, delayMs: number, timeoutMs: number, signal: AbortSignal | undefined): Promise<void> {
    return this.#settlements.confirm(this.#msg.reply as string, kind, delayMs, this.id, timeoutMs, signal);
  }
}

function lookupMap(msg: Msg): HeaderMap {
  const headers = msg.headers;
  if (headers === undefined) return emptyHeaderMap;
  const map = new Map<string, string>();
  for (const [name, values] of headers) {
    const lower = name.toLowerCase();
    const value = values[0];
    if (value !== undefined && !map.has(lower)) map.set(lower, value);
  }
  return map.size === 0 ? emptyHeaderMap : map;
}

/** How a settlement's transport failures are described. */
class SettleFailures implements RequestFailures {
  readonly #what: string;
  readonly #id: number;
  constructor(kind: SettleKind, id: number) {
    this.#what = kind === "release" ? "nak" : kind;
    this.#id = id;
  }
  noResponders(): WindshiftError {
    return new WindshiftError(
      ErrorCode.Server,
      `${this.#what} of event ${this.#id}: nobody took it (is the consumer gone?)`,
      {
        details: { id: this.#id },
      },
    );
  }
  timeout(): WindshiftError {
    return new WindshiftError(
      ErrorCode.Timeout,
      `${this.#what} of event ${this.#id}: the server did not confirm in time`,
      {
        details: { id: this.#id },
      },
    );
  }
  closed(): WindshiftError {
    return new WindshiftError(ErrorCode.Closed, `${this.#what} of event ${this.#id}: the connection is closed`, {
      details: { id: this.#id },
    });
  }
  denied(denial: Denial, cause: unknown): WindshiftError {
    return permissionDenied(`${this.#what} of event ${this.#id}`, denial, cause);
  }
}
