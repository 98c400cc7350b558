import { describe, expect, it } from "vitest";
import type { SettleKind } from "../../src/engines/engine.js";
import { parseDelivery } from "../../src/engines/jetstream/ack-subject.js";
import { settlePayload } from "../../src/engines/jetstream/delivery.js";

describe("parseDelivery", () => {
  it.each([
    [
      "the 9-token form",
      "$JS.ACK.orders.billing.3.42.17.1700000000000000000.5",
      { stream: "orders", consumer: "billing", deliveryCount: 3, streamSequence: 42 },
    ],
    [
      "the 11-token form with a domain",
      "$JS.ACK.hub.ACCHASH.orders.billing.1.7.2.1700000000000000000.0",
      { stream: "orders", consumer: "billing", deliveryCount: 1, streamSequence: 7 },
    ],
    [
      "the 11-token form without a domain (_)",
      "$JS.ACK._.ACCHASH.orders.billing.2.8.3.1700000000000000000.0",
      { stream: "orders", consumer: "billing", deliveryCount: 2, streamSequence: 8 },
    ],
    [
      "the 12-token form with a random token",
      "$JS.ACK.hub.ACCHASH.orders.billing.4.9007199254740991.5.1700000000000000000.0.xYz12",
      { stream: "orders", consumer: "billing", deliveryCount: 4, streamSequence: Number.MAX_SAFE_INTEGER },
    ],
    [
      "names with - and _",
      "$JS.ACK.my-stream.my_consumer-1.10.20.30.40.50",
      { stream: "my-stream", consumer: "my_consumer-1", deliveryCount: 10, streamSequence: 20 },
    ],
  ])("parses %s", (_, reply, info) => {
    expect(parseDelivery(reply)).toEqual(info);
  });

  it.each([
    ["an empty subject", ""],
    ["an inbox", "_INBOX.abc.def"],
    ["another $JS subject", "$JS.API.CONSUMER.INFO.orders.billing.1.2.3"],
    ["the prefix only", "$JS.ACK."],
    ["too few tokens", "$JS.ACK.orders.billing.3.42.17.1700000000000000000"],
    ["10 tokens", "$JS.ACK.hub.orders.billing.3.42.17.1700000000000000000.5"],
    ["a delivery count that is not a number", "$JS.ACK.orders.billing.three.42.17.1700000000000000000.5"],
    ["a stream sequence that is not a number", "$JS.ACK.orders.billing.3.4x2.17.1700000000000000000.5"],
    ["an unsafe stream sequence", "$JS.ACK.orders.billing.3.99999999999999999999.17.1700000000000000000.5"],
    ["lower-case $js", "$js.ack.orders.billing.3.42.17.1700000000000000000.5"],
  ])("refuses %s", (_, reply) => {
    expect(parseDelivery(reply)).toBeUndefined();
  });
});

describe("settlePayload", () => {
  const text = (kind: SettleKind, delayMs: number): string => new TextDecoder().decode(settlePayload(kind, delayMs));

  it.each<[SettleKind, number, string]>([
    ["ack", 0, "+ACK"],
    ["ack", 5_000, "+ACK"],
    ["term", 0, "+TERM"],
    ["term", 5_000, "+TERM"],
    ["progress", 0, "+WPI"],
    ["nak", 0, "-NAK"],
    ["nak", -1, "-NAK"],
    ["nak", 1, '-NAK {"delay":1000000}'],
    ["nak", 1_500, '-NAK {"delay":1500000000}'],
    ["nak", 3_600_000, '-NAK {"delay":3600000000000}'],
    ["release", 0, '-NAK {"delay":50000000}'],
    ["release", 10_000, '-NAK {"delay":50000000}'],
  ])("sends %s with delay %i ms as %s", (kind, delayMs, payload) => {
    expect(text(kind, delayMs)).toBe(payload);
  });

  it("puts the nak delay in nanoseconds", () => {
    const body = text("nak", 250).slice("-NAK ".length);
    expect(JSON.parse(body)).toEqual({ delay: 250 * 1_000_000 });
  });
});
