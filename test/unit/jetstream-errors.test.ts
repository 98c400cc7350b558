import { PermissionViolationError } from "@nats-io/nats-core";
import { describe, expect, it } from "vitest";
import { wrongSequence } from "../../src/engines/errors.js";
import { Denials } from "../../src/engines/jetstream/denials.js";
import {
  apiError,
  isClosed,
  isConsumerNotFound,
  isNoResponders,
  isStreamNotFound,
  isTimeout,
  jsErrorCode,
  parseLastSequence,
  permissionViolation,
  toWindshiftError,
} from "../../src/engines/jetstream/errors.js";
import { type ErrorCode, WindshiftError } from "../../src/errors.js";
import { recordingLogger } from "../log.js";
import { windshiftError } from "./expect-error.js";

/** An error shaped like one of nats.js's: matched by name, with an optional API `code`. */
function natsError(name: string, message = `${name} happened`, extra: { code?: number; cause?: unknown } = {}): Error {
  const err = new Error(message, extra.cause === undefined ? undefined : { cause: extra.cause });
  err.name = name;
  if (extra.code !== undefined) Object.assign(err, { code: extra.code });
  return err;
}

describe("toWindshiftError", () => {
  it("passes a WindshiftError through unchanged", () => {
    const err = new WindshiftError("ABORTED", "stop");
    expect(toWindshiftError(err, "publish")).toBe(err);
  });

  it.each<[string, unknown, ErrorCode, string, Record<string, unknown>]>([
    ["a timeout", natsError("TimeoutError"), "TIMEOUT", "publish: timed out", {}],
    ["a closed connection", natsError("ClosedConnectionError"), "CLOSED", "publish: the connection is closed", {}],
    ["a draining connection", natsError("DrainingConnectionError"), "CLOSED", "publish: the connection is closed", {}],
    [
      "a missing stream",
      natsError("StreamNotFoundError", "stream not found", { code: 10059 }),
      "NOT_FOUND",
      "publish: stream not found",
      { jsErrorCode: 10059 },
    ],
    [
      "a missing consumer",
      natsError("ConsumerNotFoundError", "consumer not found", { code: 10014 }),
      "NOT_FOUND",
      "publish: consumer not found",
      { jsErrorCode: 10014 },
    ],
    [
      "an API error for a missing stream",
      natsError("JetStreamApiError", "stream not found", { code: 10059 }),
      "NOT_FOUND",
      "publish: stream not found",
      { jsErrorCode: 10059 },
    ],
    [
      "an API error for a missing consumer",
      natsError("JetStreamApiError", "consumer not found", { code: 10014 }),
      "NOT_FOUND",
      "publish: consumer not found",
      { jsErrorCode: 10014 },
    ],
    [
      "an API error for a missing message",
      natsError("JetStreamApiError", "no message found", { code: 10037 }),
      "NOT_FOUND",
      "publish: no message found",
      { jsErrorCode: 10037 },
    ],
    [
      "another API error",
      natsError("JetStreamApiError", "insufficient resources", { code: 10023 }),
      "SERVER",
      "publish: insufficient resources",
      { jsErrorCode: 10023 },
    ],
    ["no responders", natsError("NoResponders"), "SERVER", "publish: JetStream did not answer (is it enabled?)", {}],
    [
      "JetStream not enabled",
      natsError("JetStreamNotEnabled"),
      "SERVER",
      "publish: JetStream did not answer (is it enabled?)",
      {},
    ],
    [
      "a request error caused by no responders",
      natsError("RequestError", "request failed", { cause: natsError("NoResponders") }),
      "SERVER",
      "publish: JetStream did not answer (is it enabled?)",
      {},
    ],
    ["a request error for another reason", natsError("RequestError", "bad"), "SERVER", "publish: bad", {}],
    [
      "a plain error with a numeric code (not an API error)",
      Object.assign(new Error("odd"), { code: 10059 }),
      "SERVER",
      "publish: odd",
      {},
    ],
    ["a string", "kaput", "SERVER", "publish: kaput", {}],
    [
      "a refused publish",
      PermissionViolationError.parse('Permissions Violation for Publish to "$JS.API.STREAM.INFO.s"'),
      "PERMISSION_DENIED",
      'publish: permission denied: the user may not publish to "$JS.API.STREAM.INFO.s"',
      { operation: "publish", subject: "$JS.API.STREAM.INFO.s" },
    ],
    [
      "a request error caused by a refused subscription",
      natsError("RequestError", "x", {
        cause: PermissionViolationError.parse('Permissions Violation for Subscription to "_INBOX.abc.*"'),
      }),
      "PERMISSION_DENIED",
      'publish: permission denied: the user may not subscribe to "_INBOX.abc.*"',
      { operation: "subscribe", subject: "_INBOX.abc.*" },
    ],
  ])("maps %s", (_, err, code, message, details) => {
    const mapped = toWindshiftError(err, "publish");
    expect(mapped).toEqual(windshiftError(code, { message }));
    expect(mapped.details).toEqual(expect.objectContaining(details));
    expect(mapped.cause).toBe(err);
  });
});

describe("apiError", () => {
  it.each<[string, { code?: number; err_code?: number; description?: string }, ErrorCode, string, object]>([
    [
      "a wrong last sequence",
      { code: 400, err_code: 10071, description: "wrong last sequence: 3" },
      "WRONG_SEQUENCE",
      "publish: wrong last sequence: 3",
      { jsErrorCode: 10071 },
    ],
    [
      "a missing stream",
      { err_code: 10059, description: "stream not found" },
      "NOT_FOUND",
      "publish: stream not found",
      { jsErrorCode: 10059 },
    ],
    [
      "a missing consumer",
      { err_code: 10014, description: "consumer not found" },
      "NOT_FOUND",
      "publish: consumer not found",
      { jsErrorCode: 10014 },
    ],
    [
      "a missing message",
      { err_code: 10037, description: "no message found" },
      "NOT_FOUND",
      "publish: no message found",
      { jsErrorCode: 10037 },
    ],
    [
      "another error",
      { code: 503, err_code: 10008, description: "unavailable" },
      "SERVER",
      "publish: unavailable",
      { jsErrorCode: 10008 },
    ],
    ["an error without err_code", { code: 500, description: "oops" }, "SERVER", "publish: oops", {}],
    [
      "an error without description",
      { err_code: 10071 },
      "WRONG_SEQUENCE",
      "publish: unknown error",
      { jsErrorCode: 10071 },
    ],
  ])("maps %s", (_, error, code, message, details) => {
    const mapped = apiError("publish", error);
    expect(mapped).toEqual(windshiftError(code, { message }));
    expect(mapped.details).toEqual(details);
  });
});

describe("the nats.js error guards", () => {
  it("recognise errors by name, not class", () => {
    expect(isTimeout(natsError("TimeoutError"))).toBe(true);
    expect(isTimeout({ name: "TimeoutError" })).toBe(false);
    expect(isClosed(natsError("ClosedConnectionError"))).toBe(true);
    expect(isClosed(natsError("TimeoutError"))).toBe(false);
    expect(isNoResponders(natsError("NoResponders"))).toBe(true);
    expect(isNoResponders(natsError("RequestError", "x", { cause: natsError("TimeoutError") }))).toBe(false);
  });

  it("read the API error code of API errors only", () => {
    expect(jsErrorCode(natsError("JetStreamApiError", "x", { code: 10071 }))).toBe(10071);
    expect(jsErrorCode(natsError("StreamNotFoundError", "x", { code: 10059 }))).toBe(10059);
    expect(jsErrorCode(natsError("JetStreamApiError"))).toBeUndefined();
    expect(jsErrorCode(natsError("TimeoutError", "x", { code: 10059 }))).toBeUndefined();
    expect(jsErrorCode("JetStreamApiError")).toBeUndefined();
  });

  it("count a missing stream as a missing consumer, not the other way round", () => {
    const noStream = natsError("JetStreamApiError", "x", { code: 10059 });
    const noConsumer = natsError("JetStreamApiError", "x", { code: 10014 });
    expect(isStreamNotFound(noStream)).toBe(true);
    expect(isConsumerNotFound(noStream)).toBe(true);
    expect(isStreamNotFound(noConsumer)).toBe(false);
    expect(isConsumerNotFound(noConsumer)).toBe(true);
    expect(isConsumerNotFound(natsError("JetStreamApiError", "x", { code: 10037 }))).toBe(false);
  });
});

describe("permission violations", () => {
  it("are recognised by name, also as the cause of a request error", () => {
    const refused = natsError("PermissionViolationError", "x");
    Object.assign(refused, { operation: "publish", subject: "a.b" });
    expect(permissionViolation(refused)).toEqual({ operation: "publish", subject: "a.b" });
    expect(permissionViolation(natsError("RequestError", "x", { cause: refused }))).toEqual({
      operation: "publish",
      subject: "a.b",
    });
    expect(permissionViolation(natsError("TimeoutError"))).toBeUndefined();
    expect(permissionViolation("Permissions Violation")).toBeUndefined();
  });

  it("go to whoever claims them; a refused fire-and-forget ack is warned about once per consumer", () => {
    const log = recordingLogger();
    const denials = new Denials(log);
    const seen: string[] = [];
    const stop = denials.listen((denial) => {
      seen.push(denial.subject);
      return denial.subject === "mine";
    });
    const refuse = (subject: string) =>
      denials.dispatch(PermissionViolationError.parse(`Permissions Violation for Publish to "${subject}"`));
    refuse("mine");
    refuse("$JS.ACK.orders.billing.1.5.5.1700000000000000000.0");
    refuse("$JS.ACK.orders.billing.1.6.6.1700000000000000000.0");
    refuse("$JS.ACK.orders.shipping.1.6.6.1700000000000000000.0");
    refuse("someone.elses");
    denials.dispatch(natsError("ProtocolError", "not a permission"));
    stop();
    refuse("mine");
    expect(seen).toEqual([
      "mine",
      "$JS.ACK.orders.billing.1.5.5.1700000000000000000.0",
      "$JS.ACK.orders.billing.1.6.6.1700000000000000000.0",
      "$JS.ACK.orders.shipping.1.6.6.1700000000000000000.0",
      "someone.elses",
    ]);
    expect(log.lines.map((l) => [l.level, (l.fields as { consumer?: string }).consumer])).toEqual([
      ["warn", "billing"],
      ["warn", "shipping"],
    ]);
  });
});

describe("parseLastSequence", () => {
  it.each<[string, number | undefined]>([
    ["wrong last sequence: 3", 3],
    ["wrong last sequence: 0", 0],
    ["Wrong Last Sequence: 1234567", 1234567],
    ["wrong last sequence 42", 42],
    ["wrong last sequence: expected 5", 5],
    ["wrong last sequence", undefined],
    ["wrong last sequence: none", undefined],
    ["wrong last msg ID: x", undefined],
    ["", undefined],
    ["wrong last sequence: 99999999999999999999", undefined],
  ])("reads %j as %s", (text, expected) => {
    expect(parseLastSequence(text)).toBe(expected);
  });
});

describe("a missing thing the call was about", () => {
  const noStream = { err_code: 10059, description: "stream not found" };
  const noConsumer = { err_code: 10014, description: "consumer not found" };

  it("names the consumer, its stream and the call that creates it", () => {
    const mapped = apiError("consumer", noConsumer, { stream: "orders", consumer: "billing" });
    expect(mapped).toEqual(
      windshiftError("NOT_FOUND", {
        message:
          'consumer "billing" of stream "orders" not found: create it with ensureConsumer("orders", { name: "billing" })',
      }),
    );
    expect(mapped.details).toEqual({ stream: "orders", consumer: "billing", jsErrorCode: 10014 });
  });

  it("names a missing stream and both calls to make", () => {
    const mapped = toWindshiftError(natsError("StreamNotFoundError", "stream not found", { code: 10059 }), "x", {
      stream: "orders",
      consumer: "billing",
    });
    expect(mapped.message).toBe(
      'stream "orders" not found: create it with ensureStream("orders", { subjects: [...] }), then its consumer with ensureConsumer("orders", { name: "billing" })',
    );
    expect(mapped.details).toEqual({ stream: "orders", consumer: "billing", jsErrorCode: 10059 });
  });

  it("points a delete at the list instead of at creating it", () => {
    expect(apiError("x", noStream, { stream: "orders", deleting: true }).message).toBe(
      'stream "orders" not found; listStreams() lists those there are',
    );
    expect(apiError("x", noConsumer, { stream: "orders", consumer: "c", deleting: true }).message).toBe(
      'consumer "c" of stream "orders" not found; listConsumers("orders") lists those there are',
    );
  });

  it("names a missing event", () => {
    const mapped = apiError(
      "x",
      { err_code: 10037, description: "no message found" },
      { stream: "s", event: { id: 4 } },
    );
    expect(mapped.message).toBe('stream "s" has no event 4 (never stored, deleted, or removed by a limit)');
  });

  it("keeps the server's text when the code is not about the target", () => {
    expect(apiError("x", noConsumer, { stream: "orders" }).message).toBe("x: consumer not found");
  });

  it("truncates a long name", () => {
    const long = "n".repeat(200);
    expect(apiError("x", noStream, { stream: long }).message).toMatch(
      /^stream "n{77}\.\.\." \(200 characters\) not found/,
    );
  });
});

describe("wrongSequence", () => {
  const check = (expectedLastId: number | undefined, expectedLastSubjectId: number | undefined) => ({
    subject: "orders.created",
    stream: "orders",
    expectedLastId,
    expectedLastSubjectId,
  });

  it("names the stream's check, both ids and the id to publish with", () => {
    const err = wrongSequence(check(1, undefined), 2);
    expect(err.message).toBe(
      'publish to "orders.created": expectedLastId 1, but the last id in stream "orders" is 2: another event was stored first; read it, then publish with expectedLastId 2',
    );
    expect(err.details).toEqual({
      subject: "orders.created",
      stream: "orders",
      expected: 1,
      actual: 2,
      option: "expectedLastId",
    });
  });

  it("says 'the stream' when the server named none", () => {
    expect(wrongSequence({ ...check(4, undefined), stream: undefined }, 2).message).toBe(
      'publish to "orders.created": expectedLastId 4, but the last id in the stream is 2; publish with expectedLastId 2',
    );
  });

  it.each<[string, number | undefined, number | undefined, number, string | undefined]>([
    ["only the subject's check", undefined, 3, 5, "expectedLastSubjectId"],
    ["both, the subject's last id equal to its expectation: the stream's failed", 9, 3, 3, "expectedLastId"],
    ["both, an id below the subject's expectation: the subject's failed", 9, 3, 1, "expectedLastSubjectId"],
    ["both, an id above the subject's expectation: either", 9, 3, 7, undefined],
  ])("tells which check failed: %s", (_, lastId, lastSubjectId, actual, option) => {
    const err = wrongSequence(check(lastId, lastSubjectId), actual);
    expect(err.code).toBe("WRONG_SEQUENCE");
    expect(err.details.option).toBe(option);
    expect(err.details.actual).toBe(actual);
    if (option === undefined) expect(err.message).toContain("the last id (of the stream or on the subject) is 7");
  });
});
