import { AckPolicy, DeliverPolicy, type JetStreamManager, jetstreamManager } from "@nats-io/jetstream";
import { beforeAll, describe, expect, it } from "vitest";
import { TestEventSchema } from "../gen/windshift/test/v1/events_pb.js";
import { type ConsumerStart, ErrorCode, isValidName } from "../src/index.js";
import { expectNoEvent, nextEvent, uniqueName, useServer, waitFor, windshiftError } from "./helpers.js";

const env = useServer();
let jsm: JetStreamManager;

beforeAll(async () => {
  jsm = await jetstreamManager(env.nc);
});

const MS = 1_000_000; // nanoseconds per millisecond

/** A new stream capturing `${name}.>`. */
async function newStream(): Promise<string> {
  const s = uniqueName();
  await env.events.ensureStream(s, { subjects: [`${s}.>`] });
  return s;
}

/** Publishes one event per subject suffix; returns their ids. */
async function publish(stream: string, ...suffixes: string[]): Promise<number[]> {
  const ids: number[] = [];
  for (const suffix of suffixes) {
    ids.push((await env.events.publish(`${stream}.${suffix}`, TestEventSchema, { text: suffix })).id);
  }
  return ids;
}

/**
 * Subscribes, takes `n` events (acking each), closes, and checks with the
 * server that exactly those `n` were delivered and nothing is left.
 */
async function receive(stream: string, consumer: string, n: number): Promise<number[]> {
  const ids: number[] = [];
  {
    await using sub = await env.events.subscribe(stream, consumer, { schema: TestEventSchema });
    const it = sub[Symbol.asyncIterator]();
    for (let i = 0; i < n; i++) {
      const event = await nextEvent(it);
      expect(event.data.text).toBe(event.subject.slice(stream.length + 1));
      ids.push(event.id);
      await event.ack();
    }
  }
  const info = await jsm.consumers.info(stream, consumer);
  expect(info.num_pending, "events left undelivered").toBe(0);
  expect(info.num_ack_pending, "events delivered but not acked").toBe(0);
  expect(info.delivered.consumer_seq, "deliveries").toBe(n);
  return ids;
}

describe("ensureConsumer: durable and ephemeral", () => {
  it("a durable consumer gets its name, the defaults, and no inactive threshold", async () => {
    const s = await newStream();
    const result = await env.events.ensureConsumer(s, { name: "worker" });
    expect(result).toEqual({
      name: "worker",
      stream: s,
      durable: true,
      created: true,
      config: { subjects: [], from: { end: true }, processingTimeoutMs: 30_000, maxUnsettledEvents: 1_000 },
    });
    const info = await jsm.consumers.info(s, "worker");
    expect(info.name).toBe("worker");
    expect(info.config.durable_name).toBe("worker");
    expect(info.config.ack_policy).toBe(AckPolicy.Explicit);
    expect(info.config.ack_wait).toBe(30_000 * MS);
    expect(info.config.deliver_policy).toBe(DeliverPolicy.New);
    expect(info.config.max_ack_pending).toBe(1_000);
    expect(info.config.max_deliver).toBe(-1);
    expect(info.config.inactive_threshold ?? 0).toBe(0);
    expect(info.config.filter_subject ?? "").toBe("");
  });

  it("an ephemeral consumer gets a server-generated name and a 1 h inactive threshold", async () => {
    const s = await newStream();
    const result = await env.events.ensureConsumer(s);
    expect(result.durable).toBe(false);
    expect(result.created).toBe(true);
    expect(result.stream).toBe(s);
    expect(isValidName(result.name)).toBe(true);
    expect(result.config.inactiveThresholdMs).toBe(3_600_000);
    const info = await jsm.consumers.info(s, result.name);
    expect(info.name).toBe(result.name);
    expect(info.config.durable_name).toBeUndefined();
    expect(info.config.inactive_threshold).toBe(3_600_000 * MS);
    expect(info.config.ack_policy).toBe(AckPolicy.Explicit);
    expect(info.config.deliver_policy).toBe(DeliverPolicy.New);
    // A second ephemeral consumer is another consumer.
    const other = await env.events.ensureConsumer(s);
    expect(other.name).not.toBe(result.name);
    expect((await jsm.streams.info(s)).state.consumer_count).toBe(2);
  });

  it("an ephemeral consumer delivers to a subscriber by its generated name", async () => {
    const s = await newStream();
    const consumer = await env.events.ensureConsumer(s, { from: { start: true } });
    await publish(s, "a", "b");
    expect(await receive(s, consumer.name, 2)).toEqual([1, 2]);
  });

  it("an ephemeral consumer's inactiveThresholdMs lands on the server", async () => {
    const s = await newStream();
    const result = await env.events.ensureConsumer(s, { inactiveThresholdMs: 90_000 });
    expect(result.config.inactiveThresholdMs).toBe(90_000);
    expect((await jsm.consumers.info(s, result.name)).config.inactive_threshold).toBe(90_000 * MS);
  });

  it("is idempotent for a durable consumer: created, then not", async () => {
    const s = await newStream();
    const first = await env.events.ensureConsumer(s, { name: "again", processingTimeoutMs: 12_000 });
    const second = await env.events.ensureConsumer(s, { name: "again", processingTimeoutMs: 12_000 });
    expect(first.created).toBe(true);
    expect(second.created).toBe(false);
    expect(second.config).toEqual(first.config);
    expect((await jsm.streams.info(s)).state.consumer_count).toBe(1);
  });
});

describe("ensureConsumer: options on the server", () => {
  it("maps every option to the server's config and echoes it back", async () => {
    const s = await newStream();
    const result = await env.events.ensureConsumer(s, {
      name: "tuned",
      subjects: [`${s}.orders.*`],
      from: { start: true },
      processingTimeoutMs: 7_000,
      maxDeliveryAttempts: 4,
      maxUnsettledEvents: 20,
      inactiveThresholdMs: 600_000,
    });
    const { config } = await jsm.consumers.info(s, "tuned");
    expect(config.durable_name).toBe("tuned");
    expect(config.filter_subject).toBe(`${s}.orders.*`);
    expect(config.deliver_policy).toBe(DeliverPolicy.All);
    expect(config.ack_wait).toBe(7_000 * MS);
    expect(config.max_deliver).toBe(4);
    expect(config.max_ack_pending).toBe(20);
    expect(config.inactive_threshold).toBe(600_000 * MS);
    expect(result.config).toEqual({
      subjects: [`${s}.orders.*`],
      from: { start: true },
      processingTimeoutMs: 7_000,
      maxDeliveryAttempts: 4,
      maxUnsettledEvents: 20,
      inactiveThresholdMs: 600_000,
    });
  });

  it("subscribe reports the consumer's processing timeout", async () => {
    const s = await newStream();
    await env.events.ensureConsumer(s, { name: "slow", processingTimeoutMs: 45_000 });
    await using sub = await env.events.subscribe(s, "slow", { schema: TestEventSchema });
    expect(sub.processingTimeoutMs).toBe(45_000);
  });
});

describe("ensureConsumer: from", () => {
  it("{ start: true } delivers every stored event, then new ones", async () => {
    const s = await newStream();
    await publish(s, "a", "b", "c");
    const c = await env.events.ensureConsumer(s, { name: "c", from: { start: true } });
    expect(c.config.from).toEqual({ start: true });
    expect((await jsm.consumers.info(s, "c")).config.deliver_policy).toBe(DeliverPolicy.All);
    await publish(s, "d", "e");
    expect(await receive(s, "c", 5)).toEqual([1, 2, 3, 4, 5]);
  });

  it("{ end: true } delivers only events published after the consumer was created", async () => {
    const s = await newStream();
    await publish(s, "a", "b", "c");
    const c = await env.events.ensureConsumer(s, { name: "c", from: { end: true } });
    expect(c.config.from).toEqual({ end: true });
    expect((await jsm.consumers.info(s, "c")).config.deliver_policy).toBe(DeliverPolicy.New);
    await publish(s, "d", "e");
    expect(await receive(s, "c", 2)).toEqual([4, 5]);
  });

  it("the default is { end: true }", async () => {
    const s = await newStream();
    await publish(s, "a", "b");
    await env.events.ensureConsumer(s, { name: "c" });
    await publish(s, "c");
    expect(await receive(s, "c", 1)).toEqual([3]);
  });

  it("{ id } delivers from that id, inclusive", async () => {
    const s = await newStream();
    await publish(s, "a", "b", "c");
    const c = await env.events.ensureConsumer(s, { name: "c", from: { id: 2 } });
    expect(c.config.from).toEqual({ id: 2 });
    const { config } = await jsm.consumers.info(s, "c");
    expect(config.deliver_policy).toBe(DeliverPolicy.StartSequence);
    expect(config.opt_start_seq).toBe(2);
    await publish(s, "d");
    expect(await receive(s, "c", 3)).toEqual([2, 3, 4]);
  });

  it("{ time } delivers events stored at or after that time", async () => {
    const s = await newStream();
    await publish(s, "a", "b");
    const second = await jsm.streams.getMessage(s, { seq: 2 });
    const cutoff = new Date(Math.floor((second as { time: Date }).time.getTime()) + 1);
    // Server and test share this machine's clock: events published from now on are stored after the cutoff.
    await waitFor(() => Date.now() > cutoff.getTime() + 1, { what: "the clock to pass the cutoff" });
    await publish(s, "c", "d");
    const c = await env.events.ensureConsumer(s, { name: "c", from: { time: cutoff } });
    expect(c.config.from).toEqual({ time: cutoff });
    const { config } = await jsm.consumers.info(s, "c");
    expect(config.deliver_policy).toBe(DeliverPolicy.StartTime);
    expect(new Date(config.opt_start_time as string).getTime()).toBe(cutoff.getTime());
    await publish(s, "e");
    expect(await receive(s, "c", 3)).toEqual([3, 4, 5]);
  });

  it.each<[string, ConsumerStart, number[]]>([
    ["start", { start: true }, [1, 2, 3]],
    ["end", { end: true }, [3]],
    ["id", { id: 2 }, [2, 3]],
  ])("an ephemeral consumer honours from %s", async (_, from, expected) => {
    const s = await newStream();
    await publish(s, "a", "b");
    const c = await env.events.ensureConsumer(s, { from });
    await publish(s, "c");
    expect(await receive(s, c.name, expected.length)).toEqual(expected);
  });
});

describe("ensureConsumer: subjects", () => {
  it.each([
    ["a star in the middle", "*.created", ["orders.created", "users.created"]],
    ["a star at the end", "orders.*", ["orders.created", "orders.paid"]],
    ["a gt at the end", "orders.>", ["orders.created", "orders.paid", "orders.item.added"]],
    ["no wildcard", "orders.paid", ["orders.paid"]],
  ])("filters with %s", async (_, filter, expected) => {
    const s = await newStream();
    const all = ["orders.created", "users.created", "orders.paid", "orders.item.added", "users.deleted"];
    const ids = await publish(s, ...all);
    const c = await env.events.ensureConsumer(s, { name: "f", subjects: [`${s}.${filter}`], from: { start: true } });
    expect(c.config.subjects).toEqual([`${s}.${filter}`]);
    expect((await jsm.consumers.info(s, "f")).config.filter_subject).toBe(`${s}.${filter}`);
    const want = all.flatMap((subject, i) => (expected.includes(subject) ? [ids[i]] : []));
    expect(await receive(s, "f", want.length)).toEqual(want);
  });
});

describe("ensureConsumer: limits observable on the server", () => {
  it("maxDeliveryAttempts stops redelivering a rejected event after that many attempts", async () => {
    const s = await newStream();
    await env.events.ensureConsumer(s, { name: "md", maxDeliveryAttempts: 3 });
    expect((await jsm.consumers.info(s, "md")).config.max_deliver).toBe(3);
    const advisories: unknown[] = [];
    const adv = env.nc.subscribe(`$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${s}.md`, {
      callback: (err, msg) => {
        if (err === null) advisories.push(msg.json());
      },
    });
    try {
      await using sub = await env.events.subscribe(s, "md", { schema: TestEventSchema });
      const it = sub[Symbol.asyncIterator]();
      await publish(s, "a");
      for (let attempt = 1; attempt <= 3; attempt++) {
        const event = await nextEvent(it);
        expect(event.id).toBe(1);
        expect(event.deliveryAttempt).toBe(attempt);
        await event.reject();
      }
      await waitFor(() => advisories.length > 0, { what: "the max-deliveries advisory" });
      expect(advisories[0]).toMatchObject({ stream: s, consumer: "md", stream_seq: 1, deliveries: 3 });
      await expectNoEvent(it, 300);
      expect((await jsm.consumers.info(s, "md")).delivered.consumer_seq).toBe(3);
    } finally {
      adv.unsubscribe();
    }
  });

  it("maxUnsettledEvents caps unsettled deliveries", async () => {
    const s = await newStream();
    await env.events.ensureConsumer(s, { name: "mp", maxUnsettledEvents: 2, from: { start: true } });
    expect((await jsm.consumers.info(s, "mp")).config.max_ack_pending).toBe(2);
    await publish(s, "a", "b", "c");
    await using sub = await env.events.subscribe(s, "mp", { schema: TestEventSchema });
    const it = sub[Symbol.asyncIterator]();
    const first = await nextEvent(it);
    const second = await nextEvent(it);
    expect([first.id, second.id]).toEqual([1, 2]);
    const { next: pending } = await expectNoEvent(it, 300);
    const info = await jsm.consumers.info(s, "mp");
    expect(info.num_ack_pending).toBe(2);
    expect(info.delivered.consumer_seq).toBe(2);
    await first.ack();
    const third = await pending;
    expect(third.done).toBe(false);
    expect(third.value?.id).toBe(3);
    await second.ack();
    await third.value?.ack();
  });
});

describe("ensureConsumer: update", () => {
  it("an update of a durable keeps its position and changes processingTimeoutMs", async () => {
    const s = await newStream();
    await env.events.ensureConsumer(s, { name: "u", from: { start: true } });
    await publish(s, "a", "b", "c");
    {
      await using sub = await env.events.subscribe(s, "u", { schema: TestEventSchema, prefetch: 1 });
      const it = sub[Symbol.asyncIterator]();
      for (const id of [1, 2]) {
        const event = await nextEvent(it);
        expect(event.id).toBe(id);
        await event.ack();
      }
    }
    await waitFor(async () => (await jsm.consumers.info(s, "u")).ack_floor.stream_seq === 2, { what: "ack floor 2" });
    // `from` is ignored for an existing consumer: it keeps its position.
    const updated = await env.events.ensureConsumer(s, { name: "u", from: { end: true }, processingTimeoutMs: 5_000 });
    expect(updated.created).toBe(false);
    expect(updated.config.processingTimeoutMs).toBe(5_000);
    const info = await jsm.consumers.info(s, "u");
    expect(info.config.ack_wait).toBe(5_000 * MS);
    expect(info.config.deliver_policy).toBe(DeliverPolicy.All);
    expect(info.ack_floor.stream_seq).toBe(2);
    await using sub = await env.events.subscribe(s, "u", { schema: TestEventSchema });
    expect(sub.processingTimeoutMs).toBe(5_000);
    const next = await nextEvent(sub[Symbol.asyncIterator]());
    expect(next.id).toBe(3);
    await next.ack();
  });
});

describe("ensureConsumer and subscribe: missing things", () => {
  it("ensureConsumer on a missing stream fails with NOT_FOUND", async () => {
    const s = uniqueName("missing");
    const durable = await windshiftError(env.events.ensureConsumer(s, { name: "c" }));
    expect(durable.code).toBe(ErrorCode.NotFound);
    const ephemeral = await windshiftError(env.events.ensureConsumer(s));
    expect(ephemeral.code).toBe(ErrorCode.NotFound);
  });

  it("subscribe to a missing consumer fails with NOT_FOUND", async () => {
    const s = await newStream();
    const err = await windshiftError(env.events.subscribe(s, "nobody", { schema: TestEventSchema }));
    expect(err.code).toBe(ErrorCode.NotFound);
  });

  it("subscribe on a missing stream fails with NOT_FOUND", async () => {
    const err = await windshiftError(env.events.subscribe(uniqueName("missing"), "nobody"));
    expect(err.code).toBe(ErrorCode.NotFound);
  });

  it("ensureConsumer with an already-aborted signal rejects with ABORTED and creates nothing", async () => {
    const s = await newStream();
    const ac = new AbortController();
    ac.abort();
    const err = await windshiftError(env.events.ensureConsumer(s, { name: "c", signal: ac.signal }));
    expect(err.code).toBe(ErrorCode.Aborted);
    expect((await jsm.streams.info(s)).state.consumer_count).toBe(0);
  });
});
