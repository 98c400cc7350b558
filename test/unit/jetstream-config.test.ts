import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  type ConsumerConfig as NatsConsumerConfig,
  type StreamConfig as NatsStreamConfig,
  StorageType,
} from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { describe, expect, it } from "vitest";
import type { ConsumerConfig, StreamConfig } from "../../src/engines/engine.js";
import { fromNatsConsumerConfig, toNatsConsumerConfig } from "../../src/engines/jetstream/consumers.js";
import { fromNatsStreamConfig, toMs, toNanos, toNatsStreamConfig } from "../../src/engines/jetstream/streams.js";
import { resolveConsumerConfig } from "../../src/streams/consumers.js";
import { resolveStreamConfig } from "../../src/streams/streams.js";
import { streamConfig } from "./engine-support.js";
import { windshiftError } from "./expect-error.js";

/** The mappings read the server version only; nothing is sent. */
const server = (version: string): NatsConnection => ({ info: { version } }) as unknown as NatsConnection;
const V2_8 = server("2.8.4");
const V2_9 = server("2.9.10");
const V2_10 = server("2.10.0");

const TIME = new Date("2030-01-02T03:04:05.678Z");
const MS = 1_000_000;

/** Every field of the server's stream config that windshift manages. */
const MANAGED_STREAM_FIELDS = [
  "name",
  "subjects",
  "max_age",
  "max_msgs",
  "max_msgs_per_subject",
  "max_bytes",
  "max_msg_size",
  "discard",
  "discard_new_per_subject",
  "storage",
  "num_replicas",
  "duplicate_window",
  "sources",
].sort();

describe("toNatsStreamConfig", () => {
  it("sets every managed field explicitly, unlimited as -1 or 0", () => {
    const out = toNatsStreamConfig(V2_9, resolveStreamConfig("orders", { subjects: ["orders.>"] }));
    expect(out).toEqual({
      name: "orders",
      subjects: ["orders.>"],
      max_age: 0,
      max_msgs: -1,
      max_msgs_per_subject: -1,
      max_bytes: -1,
      max_msg_size: -1,
      discard: DiscardPolicy.Old,
      discard_new_per_subject: false,
      storage: StorageType.File,
      num_replicas: 1,
      duplicate_window: 120_000 * MS,
      sources: [],
    });
  });

  it("maps every option, durations in nanoseconds", () => {
    const config = resolveStreamConfig("s", {
      subjects: ["a.*"],
      maxAgeMs: 60_000,
      maxEvents: 10,
      maxEventsPerSubject: 2,
      maxBytes: 4_096,
      maxEventSize: 512,
      discardPolicy: "new",
      discardNewPerSubject: true,
      storage: "memory",
      replicas: 3,
      deduplicationWindowMs: 1_500,
    });
    const out = toNatsStreamConfig(V2_9, config);
    expect(out).toEqual({
      name: "s",
      subjects: ["a.*"],
      max_age: 60_000 * MS,
      max_msgs: 10,
      max_msgs_per_subject: 2,
      max_bytes: 4_096,
      max_msg_size: 512,
      discard: DiscardPolicy.New,
      discard_new_per_subject: true,
      storage: StorageType.Memory,
      num_replicas: 3,
      duplicate_window: 1_500 * MS,
      sources: [],
    });
  });

  it.each<[string, StreamConfig]>([
    ["defaults", resolveStreamConfig("s", { subjects: ["s"] })],
    [
      "every limit",
      resolveStreamConfig("s", { subjects: ["s"], maxAgeMs: 100, maxEvents: 1, maxBytes: 1, maxEventSize: 1 }),
    ],
    ["sources", resolveStreamConfig("s", { sources: [{ stream: "a", from: { id: 2 }, subjects: ["x"] }] })],
  ])("leaves no managed field undefined (%s)", (_, config) => {
    const out = toNatsStreamConfig(V2_9, config) as Record<string, unknown>;
    expect(Object.keys(out).sort()).toEqual(MANAGED_STREAM_FIELDS);
    for (const field of MANAGED_STREAM_FIELDS) expect(out[field], field).toBeDefined();
  });

  it("maps sources: start, id, time, one subject as a filter", () => {
    const config = resolveStreamConfig("copy", {
      sources: [
        { stream: "a" },
        { stream: "b", from: { id: 42 } },
        { stream: "c", from: { time: TIME }, subjects: ["c.created"] },
      ],
    });
    expect(toNatsStreamConfig(V2_9, config).sources).toEqual([
      { name: "a" },
      { name: "b", opt_start_seq: 42 },
      { name: "c", opt_start_time: TIME.toISOString(), filter_subject: "c.created" },
    ]);
  });

  it("maps several source subjects to subject transforms on 2.10", () => {
    const config = resolveStreamConfig("copy", { sources: [{ stream: "a", subjects: ["a.x", "a.y"] }] });
    expect(toNatsStreamConfig(V2_10, config).sources).toEqual([
      {
        name: "a",
        subject_transforms: [
          { src: "a.x", dest: "" },
          { src: "a.y", dest: "" },
        ],
      },
    ]);
  });

  it("refuses several source subjects before 2.10", () => {
    const config = resolveStreamConfig("copy", { sources: [{ stream: "a", subjects: ["a.x", "a.y"] }] });
    expect(() => toNatsStreamConfig(V2_9, config)).toThrow(
      windshiftError("UNSUPPORTED_FEATURE", {
        details: expect.objectContaining({ needed: "2.10.0", server: "2.9.10" }),
      }),
    );
  });

  it("refuses discardNewPerSubject before 2.9", () => {
    const config = resolveStreamConfig("s", {
      subjects: ["s"],
      discardPolicy: "new",
      maxEventsPerSubject: 1,
      discardNewPerSubject: true,
    });
    expect(() => toNatsStreamConfig(V2_8, config)).toThrow(
      windshiftError("UNSUPPORTED_FEATURE", { details: expect.objectContaining({ feature: "discardNewPerSubject" }) }),
    );
    expect(toNatsStreamConfig(V2_9, config).discard_new_per_subject).toBe(true);
  });
});

describe("fromNatsStreamConfig", () => {
  it.each<[string, StreamConfig, NatsConnection]>([
    ["defaults", resolveStreamConfig("s", { subjects: ["s.>"] }), V2_9],
    [
      "every option",
      resolveStreamConfig("s", {
        subjects: ["a", "b.*"],
        maxAgeMs: 86_400_000,
        maxEvents: 100,
        maxEventsPerSubject: 1,
        maxBytes: 1 << 30,
        maxEventSize: 2 ** 31 - 1,
        discardPolicy: "new",
        discardNewPerSubject: true,
        storage: "memory",
        replicas: 5,
        deduplicationWindowMs: 100,
      }),
      V2_9,
    ],
    [
      "sources",
      resolveStreamConfig("s", {
        sources: [
          { stream: "a" },
          { stream: "b", from: { id: 9 }, subjects: ["b.one"] },
          { stream: "c", from: { time: TIME }, subjects: ["c.x", "c.y"] },
        ],
      }),
      V2_10,
    ],
  ])("reads back what toNatsStreamConfig wrote (%s)", (_, config, nc) => {
    expect(fromNatsStreamConfig(toNatsStreamConfig(nc, config) as NatsStreamConfig)).toEqual(config);
  });

  it("reads the server's unlimited values as undefined", () => {
    const fromServer = {
      name: "s",
      subjects: ["s"],
      max_age: 0,
      max_msgs: -1,
      max_msgs_per_subject: -1,
      max_bytes: -1,
      max_msg_size: -1,
      discard: DiscardPolicy.Old,
      storage: StorageType.File,
      num_replicas: 1,
      duplicate_window: 120_000 * MS,
    } as NatsStreamConfig;
    expect(fromNatsStreamConfig(fromServer)).toEqual(streamConfig("s", { subjects: ["s"] }));
  });
});

describe("toNanos and toMs", () => {
  it("convert both ways, rounding nanoseconds to whole milliseconds", () => {
    expect(toNanos(1_500)).toBe(1_500_000_000);
    expect(toMs(1_500_000_000)).toBe(1_500);
    expect(toMs(1_499_999)).toBe(1);
    expect(toMs(400_000)).toBe(0);
  });
});

describe("toNatsConsumerConfig", () => {
  it("maps an ephemeral consumer: explicit acks, new events, an hour's inactive threshold", () => {
    expect(toNatsConsumerConfig(V2_9, resolveConsumerConfig("orders", {}))).toEqual({
      ack_policy: AckPolicy.Explicit,
      ack_wait: 30_000 * MS,
      max_deliver: -1,
      max_ack_pending: 1_000,
      deliver_policy: DeliverPolicy.New,
      inactive_threshold: 3_600_000 * MS,
    });
  });

  it("maps a durable consumer with every option", () => {
    const config = resolveConsumerConfig("orders", {
      name: "billing",
      subjects: ["orders.paid"],
      from: { id: 5 },
      processingTimeoutMs: 2_000,
      maxDeliveryAttempts: 4,
      inactiveThresholdMs: 60_000,
      maxUnsettledEvents: 10,
    });
    expect(toNatsConsumerConfig(V2_9, config)).toEqual({
      durable_name: "billing",
      ack_policy: AckPolicy.Explicit,
      ack_wait: 2_000 * MS,
      max_deliver: 4,
      max_ack_pending: 10,
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: 5,
      inactive_threshold: 60_000 * MS,
      filter_subject: "orders.paid",
    });
  });

  it.each<[string, ConsumerConfig["from"], Partial<NatsConsumerConfig>]>([
    ["start", { kind: "start" }, { deliver_policy: DeliverPolicy.All }],
    ["end", { kind: "end" }, { deliver_policy: DeliverPolicy.New }],
    ["an id", { kind: "id", id: 3 }, { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: 3 }],
    [
      "a time",
      { kind: "time", time: TIME },
      { deliver_policy: DeliverPolicy.StartTime, opt_start_time: TIME.toISOString() },
    ],
  ])("maps a start at %s", (_, from, expected) => {
    const out = toNatsConsumerConfig(V2_9, { ...resolveConsumerConfig("s", { name: "d" }), from });
    expect(out).toMatchObject(expected);
    if (from.kind !== "id") expect(out).not.toHaveProperty("opt_start_seq");
    if (from.kind !== "time") expect(out).not.toHaveProperty("opt_start_time");
  });

  it("gives a durable consumer no inactive threshold unless asked", () => {
    expect(toNatsConsumerConfig(V2_9, resolveConsumerConfig("s", { name: "d" }))).not.toHaveProperty(
      "inactive_threshold",
    );
  });

  it("maps several subjects to filter_subjects on 2.10", () => {
    const out = toNatsConsumerConfig(V2_10, resolveConsumerConfig("s", { subjects: ["a", "b"] }));
    expect(out.filter_subjects).toEqual(["a", "b"]);
    expect(out).not.toHaveProperty("filter_subject");
  });

  it("refuses several subjects before 2.10", () => {
    expect(() => toNatsConsumerConfig(V2_9, resolveConsumerConfig("s", { subjects: ["a", "b"] }))).toThrow(
      windshiftError("UNSUPPORTED_FEATURE", { details: expect.objectContaining({ needed: "2.10.0" }) }),
    );
  });

  it("refuses an inactive threshold on a durable consumer before 2.9, but not on an ephemeral one", () => {
    expect(() =>
      toNatsConsumerConfig(V2_8, resolveConsumerConfig("s", { name: "d", inactiveThresholdMs: 1_000 })),
    ).toThrow(windshiftError("UNSUPPORTED_FEATURE", { details: expect.objectContaining({ needed: "2.9.0" }) }));
    expect(toNatsConsumerConfig(V2_8, resolveConsumerConfig("s", {})).inactive_threshold).toBe(3_600_000 * MS);
  });
});

describe("fromNatsConsumerConfig", () => {
  it.each<[string, ConsumerConfig, NatsConnection]>([
    ["an ephemeral consumer", resolveConsumerConfig("s", {}), V2_9],
    ["a durable consumer", resolveConsumerConfig("s", { name: "d", from: { start: true } }), V2_9],
    [
      "every option",
      resolveConsumerConfig("s", {
        name: "d",
        subjects: ["x.*"],
        from: { time: TIME },
        processingTimeoutMs: 1,
        maxDeliveryAttempts: 1,
        inactiveThresholdMs: 1,
        maxUnsettledEvents: 1,
      }),
      V2_9,
    ],
    ["several subjects from an id", resolveConsumerConfig("s", { subjects: ["a", "b"], from: { id: 8 } }), V2_10],
  ])("reads back what toNatsConsumerConfig wrote (%s)", (_, config, nc) => {
    expect(fromNatsConsumerConfig(toNatsConsumerConfig(nc, config) as NatsConsumerConfig)).toEqual(config);
  });

  it("reads the server's 'none' values as undefined", () => {
    const fromServer = {
      name: "EPHEMERAL1",
      ack_policy: AckPolicy.Explicit,
      ack_wait: 30_000 * MS,
      deliver_policy: DeliverPolicy.New,
      max_deliver: -1,
      max_ack_pending: 1_000,
      inactive_threshold: 0,
      filter_subject: "",
      filter_subjects: [],
    } as unknown as NatsConsumerConfig;
    expect(fromNatsConsumerConfig(fromServer)).toEqual({
      name: undefined,
      subjects: [],
      from: { kind: "end" },
      processingTimeoutMs: 30_000,
      maxDeliveryAttempts: undefined,
      inactiveThresholdMs: undefined,
      maxUnsettledEvents: 1_000,
    });
  });
});
