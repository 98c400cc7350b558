/**
 * What a JetStream delivery's reply subject (`$JS.ACK.…`) says: its stream,
 * consumer, delivery count and stream sequence. Read for every delivery, and
 * for the ack subjects named in a permission violation.
 *
 * @module
 */

import type { Msg } from "@nats-io/nats-core";
import type { DeliveryFacts } from "../engine.js";

/** Delivery facts parsed from a JetStream message's reply subject. */
export interface DeliveryInfo {
  readonly stream: string;
  readonly consumer: string;
  readonly deliveryCount: number;
  readonly streamSequence: number;
}

/** A message's delivery facts, or `undefined` when it is not a JetStream delivery. */
export function deliveryFacts(msg: Msg): DeliveryFacts | undefined {
  return msg.reply === undefined ? undefined : parseReply(msg.reply, msg);
}

/** Parses `$JS.ACK.[domain.hash.]stream.consumer.delivered.sseq.dseq.ts.pending[.token]`. */
export function parseDelivery(reply: string): DeliveryInfo | undefined {
  const facts = parseReply(reply, undefined);
  return facts === undefined
    ? undefined
    : {
        stream: facts.stream,
        consumer: facts.consumer,
        deliveryCount: facts.deliveryAttempt,
        streamSequence: facts.id,
      };
}

const NO_PAYLOAD = new Uint8Array(0);

/** The facts of a reply subject, with `msg`'s subject and payload when given (one object per delivery). */
function parseReply(reply: string, msg: Msg | undefined): DeliveryFacts | undefined {
  if (!reply.startsWith("$JS.ACK.")) return undefined;
  // Token boundaries, found without splitting the whole subject into strings.
  const dots: number[] = [];
  for (let i = reply.indexOf("."); i !== -1 && dots.length < 12; i = reply.indexOf(".", i + 1)) dots.push(i);
  const tokens = dots.length + 1;
  const o = tokens === 9 ? 2 : tokens >= 11 ? 4 : -1;
  if (o < 0) return undefined;
  const token = (n: number): string => reply.slice((dots[n - 1] as number) + 1, dots[n] ?? reply.length);
  const deliveryAttempt = count(token(o + 2));
  const id = count(token(o + 3));
  if (deliveryAttempt === undefined || id === undefined) return undefined;
  return {
    id,
    subject: msg?.subject ?? "",
    stream: token(o),
    consumer: token(o + 1),
    deliveryAttempt,
    payload: msg?.data ?? NO_PAYLOAD,
  };
}

/** A reply-subject token as a count: digits only (no sign, hex or blank), a safe integer. */
function count(token: string): number | undefined {
  if (token.length === 0 || token.length > 16) return undefined;
  let n = 0;
  for (let i = 0; i < token.length; i++) {
    const digit = token.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) return undefined;
    n = n * 10 + digit;
  }
  return Number.isSafeInteger(n) ? n : undefined;
}
