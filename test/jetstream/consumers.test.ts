// What only a NATS server shows about ensureConsumer: the JetStream consumer
// config it writes (snake_case, nanoseconds, deliver policies), consumer
// counts, delivery counters and advisories. The behaviour itself is in
// test/conformance/consumers.test.ts.
import { AckPolicy, DeliverPolicy, type JetStreamManager, jetstreamManager } from "@nats-io/jetstream";
import { beforeAll, describe, expect, it } from "vitest";
import { TestEventSchema } from "../../gen/windshift/test/v1/events_pb.js";
import { nextEvent, uniqueName, useServer, waitFor } from "../helpers.js";

const env = useServer();
let jsm: JetStreamManager;

beforeAll(async () => {
  jsm = await jetstreamManager(env.nc);
});

const MS = 1_000_000; // nanoseconds per millisecond

async function newStream(): Promise<string> {
  const s = uniqueName();
  await env.events.ensureStream(s, { subjects: [`${s}.>`] });
  return s;
}

describe("ensureConsumer: the config on the server", () => {
  it("a durable consumer: explicit acks, 30 s ack wait, deliver new, 1,000 max ack pending, no threshold", async () => {
    const s = await newStream();
    await env.events.ensureConsumer(s, { name: "worker" });
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

  it("an ephemeral consumer: no durable name, a 1 h inactive threshold; two are two consumers", async () => {
    const s = await newStream();
    const result = await env.events.ensureConsumer(s);
    const info = await jsm.consumers.info(s, result.name);
    expect(info.name).toBe(result.name);
    expect(info.config.durable_name).toBeUndefined();
    expect(info.config.inactive_threshold).toBe(3_600_000 * MS);
    expect(info.config.ack_policy).toBe(AckPolicy.Explicit);
    expect(info.config.deliver_policy).toBe(DeliverPolicy.New);
    await env.events.ensureConsumer(s);
    expect((await jsm.streams.info(s)).state.consumer_count).toBe(2);
  });

  it("an ephemeral consumer's inactiveThresholdMs is written in nanoseconds", async () => {
    const s = await newStream();
    const result = await env.events.ensureConsumer(s, { inactiveThresholdMs: 90_000 });
    expect((await jsm.consumers.info(s, result.name)).config.inactive_threshold).toBe(90_000 * MS);
  });

  it("a second ensureConsumer of a durable leaves one consumer", async () => {
    const s = await newStream();
    await env.events.ensureConsumer(s, { name: "again", processingTimeoutMs: 12_000 });
    await env.events.ensureConsumer(s, { name: "again", processingTimeoutMs: 12_000 });
    expect((await jsm.streams.info(s)).state.consumer_count).toBe(1);
  });

  it("maps every option to the server's config", async () => {
    const s = await newStream();
    await env.events.ensureConsumer(s, {
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
  });

  it("each start position is a deliver policy", async () => {
    const s = await newStream();
    const cutoff = new Date(Date.now() - 60_000);
    await env.events.ensureConsumer(s, { name: "start", from: { start: true } });
    await env.events.ensureConsumer(s, { name: "end", from: { end: true } });
    await env.events.ensureConsumer(s, { name: "id", from: { id: 2 } });
    await env.events.ensureConsumer(s, { name: "time", from: { time: cutoff } });
    expect((await jsm.consumers.info(s, "start")).config.deliver_policy).toBe(DeliverPolicy.All);
    expect((await jsm.consumers.info(s, "end")).config.deliver_policy).toBe(DeliverPolicy.New);
    const id = (await jsm.consumers.info(s, "id")).config;
    expect(id.deliver_policy).toBe(DeliverPolicy.StartSequence);
    expect(id.opt_start_seq).toBe(2);
    const time = (await jsm.consumers.info(s, "time")).config;
    expect(time.deliver_policy).toBe(DeliverPolicy.StartTime);
    expect(new Date(time.opt_start_time as string).getTime()).toBe(cutoff.getTime());
  });

  it.each(["*.created", "orders.*", "orders.>", "orders.paid"])(
    "the filter %s is the filter_subject",
    async (filter) => {
      const s = await newStream();
      await env.events.ensureConsumer(s, { name: "f", subjects: [`${s}.${filter}`] });
      expect((await jsm.consumers.info(s, "f")).config.filter_subject).toBe(`${s}.${filter}`);
    },
  );

  it("an update writes the new ack wait and keeps the deliver policy and ack floor", async () => {
    const s = await newStream();
    await env.events.ensureConsumer(s, { name: "u", from: { start: true } });
    await env.events.publish(`${s}.a`, TestEventSchema, {});
    {
      await using sub = await env.events.subscribe(s, "u", { schema: TestEventSchema, prefetch: 1 });
      await (await nextEvent(sub[Symbol.asyncIterator]())).ack();
    }
    await waitFor(async () => (await jsm.consumers.info(s, "u")).ack_floor.stream_seq === 1, { what: "ack floor 1" });
    await env.events.ensureConsumer(s, { name: "u", from: { end: true }, processingTimeoutMs: 5_000 });
    const info = await jsm.consumers.info(s, "u");
    expect(info.config.ack_wait).toBe(5_000 * MS);
    expect(info.config.deliver_policy).toBe(DeliverPolicy.All);
    expect(info.ack_floor.stream_seq).toBe(1);
  });
});

describe("ensureConsumer: limits as the server counts them", () => {
  it("maxDeliveryAttempts: the server stops after that many deliveries and says so in an advisory", async () => {
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
      await env.events.publish(`${s}.a`, TestEventSchema, {});
      for (let attempt = 1; attempt <= 3; attempt++) await (await nextEvent(it)).reject();
      await waitFor(() => advisories.length > 0, { what: "the max-deliveries advisory" });
      expect(advisories[0]).toMatchObject({ stream: s, consumer: "md", stream_seq: 1, deliveries: 3 });
      expect((await jsm.consumers.info(s, "md")).delivered.consumer_seq).toBe(3);
    } finally {
      adv.unsubscribe();
    }
  });

  it("maxUnsettledEvents is the max_ack_pending the server holds deliveries to", async () => {
    const s = await newStream();
    await env.events.ensureConsumer(s, { name: "mp", maxUnsettledEvents: 2, from: { start: true } });
    expect((await jsm.consumers.info(s, "mp")).config.max_ack_pending).toBe(2);
    for (const t of ["a", "b", "c"]) await env.events.publish(`${s}.${t}`, TestEventSchema, {});
    await using sub = await env.events.subscribe(s, "mp", { schema: TestEventSchema });
    const it = sub[Symbol.asyncIterator]();
    const held = [await nextEvent(it), await nextEvent(it)];
    await waitFor(async () => (await jsm.consumers.info(s, "mp")).num_ack_pending === 2, { what: "2 ack pending" });
    expect((await jsm.consumers.info(s, "mp")).delivered.consumer_seq).toBe(2);
    for (const event of held) await event.ack();
    await (await nextEvent(it)).ack();
  });
});
