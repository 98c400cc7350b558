import { type JetStreamManager, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { beforeAll, describe, expect, it } from "vitest";
import { TestEventSchema } from "../../gen/windshift/test/v1/events_pb.js";
import { createEvents, ErrorCode, type Events, WindshiftError } from "../../src/index.js";
import {
  abortedPublishCase,
  BAD_CLIENT_OPTIONS,
  type Case,
  consumerCases,
  emptyScene,
  expectRejection,
  oversizeCase,
  processCases,
  publishCases,
  SETTLEMENT_CASES,
  setUpScene,
  show,
  streamCases,
  subscribeCases,
} from "../conformance/validation-cases.js";
import { nextEvent, uniqueName, useServer } from "../helpers.js";

// The conformance suite checks that bad input fails with a typed error and
// leaves the engine's state alone. Here, on NATS, the same bad calls are
// shown to send nothing at all: the client under test has its own
// connection, whose outgoing message count must not move, and the server's
// own view (streams, consumers, stored messages, deliveries, waiting pulls)
// must not change.

const env = useServer();

/** The connection and client under test; nothing else publishes on it. */
let probe: NatsConnection;
let events: Events;
/** Reads the server independently of windshift. */
let jsm: JetStreamManager;
const scene = emptyScene();

beforeAll(async () => {
  probe = await env.connect();
  events = createEvents(probe);
  jsm = await jetstreamManager(env.nc);
  await setUpScene(env.events, scene);
});

async function snapshot() {
  const account = await jsm.getAccountInfo();
  const pub = await jsm.streams.info(scene.pubStream);
  const sub = await jsm.consumers.info(scene.subStream, scene.subConsumer);
  return {
    streams: account.streams,
    consumers: account.consumers,
    pubMessages: pub.state.messages,
    subDelivered: sub.delivered.consumer_seq,
    subWaiting: sub.num_waiting,
    subAckPending: sub.num_ack_pending,
    outMsgs: probe.stats().outMsgs,
  };
}

/** Runs each bad call on the probe client; none may succeed, send a message or change the server. */
async function expectNothingSent(cases: readonly Case[]): Promise<void> {
  expect(cases.length).toBeGreaterThan(0);
  for (const c of cases) {
    const before = await snapshot();
    const outcome = await Promise.resolve()
      .then(() => c.run(events, uniqueName()))
      .then(
        () => "succeeded",
        () => "failed",
      );
    expect(outcome, c.name).toBe("failed");
    expect(await snapshot(), c.name).toEqual(before);
  }
}

describe("createEvents", () => {
  // The client options every engine takes are checked in the conformance suite.
  const cases: [string, () => unknown, string][] = [
    ["null connection", () => createEvents(null as never), "nc"],
    ["undefined connection", () => createEvents(undefined as never), "nc"],
    ["a URL string", () => createEvents("nats://127.0.0.1:4222" as never), "nc"],
    ["a plain object", () => createEvents({} as never), "nc"],
    ["options that are not an object", () => createEvents(probe, "verbose" as never), "options"],
    ...[0, -1, 1.5, Number.NaN, 1_000_001, "10"].map((value): [string, () => unknown, string] => [
      `maxPublishesInFlight ${show(value)}`,
      () => createEvents(probe, { maxPublishesInFlight: value as never }),
      "maxPublishesInFlight",
    ]),
  ];
  it.each(cases)("rejects %s, sending nothing", async (_, call, field) => {
    const before = await snapshot();
    let err: unknown;
    try {
      call();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(WindshiftError);
    expect((err as WindshiftError).code).toBe(ErrorCode.Validation);
    expect((err as WindshiftError).message).toContain(field);
    expect(await snapshot()).toEqual(before);
  });

  it("accepts a connection with console as the logger and the publish bounds (control)", () => {
    expect(() => createEvents(probe, { logger: console, maxPublishesInFlight: 1_000_000 })).not.toThrow();
    expect(() => createEvents(probe, { maxPublishesInFlight: 1 })).not.toThrow();
  });
});

describe("bad calls send nothing", () => {
  it("createEvents with bad client options", async () => {
    await expectNothingSent(
      BAD_CLIENT_OPTIONS.map(
        ([what, options]): Case => ({ name: what, run: () => createEvents(probe, options as never) }),
      ),
    );
  });
  it("ensureStream", async () => {
    await expectNothingSent(streamCases());
  });
  it("ensureConsumer", async () => {
    await expectNothingSent(consumerCases(scene));
  });
  it("publish, an oversize payload and an aborted publish included", async () => {
    const maxPayload = probe.info?.max_payload;
    expect(maxPayload).toBeGreaterThan(0);
    await expectNothingSent([
      ...publishCases(scene),
      oversizeCase(scene, maxPayload as number),
      abortedPublishCase(scene),
    ]);
  });
  it("subscribe", async () => {
    await expectNothingSent(subscribeCases(scene));
  });
  it("process", async () => {
    await expectNothingSent(processCases(scene));
  });

  it("a valid publish does send, and is counted (control)", async () => {
    const before = await snapshot();
    await events.publish(`${scene.pubStream}.ok`, TestEventSchema, { text: "x" });
    const after = await snapshot();
    expect(after.pubMessages).toBe(before.pubMessages + 1);
    expect(after.outMsgs).toBeGreaterThan(before.outMsgs);
  });
});

describe("unsupported JetStream features (nats-server 2.9)", () => {
  it("the test server is older than 2.10", () => {
    const [major, minor] = (probe.info?.version ?? "").split(".").map(Number);
    expect(major).toBe(2);
    expect(minor).toBeLessThan(10);
  });

  it("refuses a consumer with two subjects, naming 2.10", async () => {
    const before = await snapshot();
    const { subStream } = scene;
    const err = await expectRejection(
      () => events.ensureConsumer(subStream, { name: "two", subjects: [`${subStream}.a`, `${subStream}.b`] }),
      ErrorCode.UnsupportedFeature,
    );
    expect(err.message).toMatch(/2\.10/);
    expect(await snapshot()).toEqual(before);
  });

  it("refuses an ephemeral consumer with two subjects, naming 2.10", async () => {
    const before = await snapshot();
    const { subStream } = scene;
    const err = await expectRejection(
      () => events.ensureConsumer(subStream, { subjects: [`${subStream}.a`, `${subStream}.>`] }),
      ErrorCode.UnsupportedFeature,
    );
    expect(err.message).toMatch(/2\.10/);
    expect(await snapshot()).toEqual(before);
  });

  it("refuses a stream source with two subjects, naming 2.10", async () => {
    const before = await snapshot();
    const { pubStream } = scene;
    const err = await expectRejection(
      () =>
        events.ensureStream(uniqueName(), {
          sources: [{ stream: pubStream, subjects: [`${pubStream}.a`, `${pubStream}.b`] }],
        }),
      ErrorCode.UnsupportedFeature,
    );
    expect(err.message).toMatch(/2\.10/);
    expect(await snapshot()).toEqual(before);
  });
});

describe("event settlement", () => {
  it("no bad ack, reject or ping sends anything, and the event stays delivered once and unsettled", async () => {
    const stream = uniqueName("ev");
    await env.events.ensureStream(stream, { subjects: [`${stream}.>`] });
    await env.events.ensureConsumer(stream, { name: "c", from: { start: true } });
    await env.events.publish(`${stream}.a`, TestEventSchema, { text: "settle me" });
    const conn = await env.connect();
    await using sub = await createEvents(conn).subscribe(stream, "c", { schema: TestEventSchema, autoPing: false });
    const event = await nextEvent(sub[Symbol.asyncIterator]());
    for (const [what, call] of SETTLEMENT_CASES) {
      const before = conn.stats().outMsgs;
      const outcome = await Promise.resolve()
        .then(() => call(event))
        .then(
          () => "succeeded",
          () => "failed",
        );
      expect(outcome, what).toBe("failed");
      expect(conn.stats().outMsgs, `${what}: something was sent`).toBe(before);
    }
    // Delivered once: no nak or release went out, whatever the client thinks.
    const info = await jsm.consumers.info(stream, "c");
    expect([info.delivered.consumer_seq, info.num_redelivered]).toEqual([1, 0]);
    await event.ack();
  });
});

describe("durations on the wire", () => {
  it("the longest maxAgeMs reaches the server in nanoseconds", async () => {
    const name = uniqueName();
    await events.ensureStream(name, { subjects: [`${name}.>`], maxAgeMs: 9_000_000_000_000 });
    const info = await jsm.streams.info(name);
    expect(info.config.max_age).toBe(9_000_000_000_000 * 1_000_000);
    await jsm.streams.delete(name);
  });
});
