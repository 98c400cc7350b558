import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { TestEventSchema } from "../gen/windshift/test/v1/events_pb.js";
import { nextEvent, uniqueName, useServer } from "./helpers.js";

const env = useServer();

describe("smoke", () => {
  it("publishes and consumes", async () => {
    const stream = uniqueName();
    await env.events.ensureStream(stream, { subjects: [`${stream}.>`] });
    const consumer = await env.events.ensureConsumer(stream, { name: "c1", from: { start: true } });
    const p = await env.events.publish(`${stream}.a`, TestEventSchema, { text: "hi", number: 5n });
    expect(p).toEqual({ id: 1, stream, duplicate: false });
    await using sub = await env.events.subscribe(stream, consumer.name, { schema: TestEventSchema });
    const it = sub[Symbol.asyncIterator]();
    const ev = await nextEvent(it);
    expect(ev.data).toEqual(create(TestEventSchema, { text: "hi", number: 5n }));
    await ev.ack();
  });
});
