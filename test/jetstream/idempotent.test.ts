import { jetstreamManager } from "@nats-io/jetstream";
import { describe, expect, it } from "vitest";
import { TestEventSchema } from "../../gen/windshift/test/v1/events_pb.js";
import { handle } from "../../src/index.js";
import { streamWithWorker, uniqueName, useServer, waitForSettled } from "../helpers.js";

const env = useServer();

describe("idempotent: the bucket on the server", () => {
  it("is a standard NATS KV bucket: KV_<bucket>, ttlMs as max age, base64url keys, <stream>:<id> values", async () => {
    const { stream, consumer } = await streamWithWorker(env.events);
    const bucket = uniqueName("done");
    const once = await env.events.idempotent(bucket, { ttlMs: 60_000 });
    await using _ = await env.events.process(
      stream,
      consumer,
      handle(TestEventSchema, () => {}),
      { middleware: [once] },
    );
    await env.events.publish(`${stream}.a`, TestEventSchema, { text: "x" }, { idempotencyKey: "order-1/created" });
    await waitForSettled(env.nc, stream, consumer, 1);

    const jsm = await jetstreamManager(env.nc);
    const info = await jsm.streams.info(`KV_${bucket}`);
    expect(info.config).toMatchObject({
      subjects: [`$KV.${bucket}.>`],
      max_msgs_per_subject: 1,
      max_age: 60_000 * 1_000_000,
    });
    const key = Buffer.from("order-1/created").toString("base64url");
    const record = await jsm.streams.getMessage(`KV_${bucket}`, { last_by_subj: `$KV.${bucket}.${key}` });
    expect(record?.string()).toBe(`${stream}:1`);
    // The middleware adds no headers of its own (no WS-Processed-Id any more).
    expect(record?.header?.get("WS-Processed-Id") ?? "").toBe("");
  });
});
