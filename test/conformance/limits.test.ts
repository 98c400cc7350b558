import { expect, it } from "vitest";
import { TestEventSchema } from "../../gen/windshift/test/v1/events_pb.js";
import { ErrorCode } from "../../src/index.js";
import { windshiftError } from "../helpers.js";
import { describeEngines, uniqueName } from "./harness.js";

describeEngines("limits checked before anything is sent", (env) => {
  it("refuses a subject too long for the server's control line, with a short message", async () => {
    const name = uniqueName();
    await env.events.ensureStream(name, { subjects: [`${name}.>`] });
    const long = `${name}.${"a".repeat(100_000)}`;
    const publish = await windshiftError(env.events.publish(long, TestEventSchema, { text: "x" }));
    expect(publish.code).toBe(ErrorCode.Validation);
    expect(publish.message).toMatch(/^subject: ".{77}\.\.\." \(\d+ characters\) is longer than 2048 characters$/);
    const stream = await windshiftError(env.events.ensureStream(uniqueName(), { subjects: [long] }));
    expect(stream.message).toMatch(/^subjects\[0\]: .* is longer than 2048 characters$/);
    const consumer = await windshiftError(env.events.ensureConsumer(name, { subjects: [long] }));
    expect(consumer.code).toBe(ErrorCode.Validation);
    // At the limit it is fine.
    const atLimit = `${name}.${"a".repeat(2_048 - name.length - 1)}`;
    expect((await env.events.publish(atLimit, TestEventSchema, { text: "x" })).id).toBe(1);
    // The connection (JetStream) is still there.
    expect((await env.events.publish(`${name}.b`, TestEventSchema, { text: "y" })).id).toBe(2);
  });

  it("refuses headers that, with the event, pass the max payload", async () => {
    const name = uniqueName();
    await env.events.ensureStream(name, { subjects: [`${name}.>`] });
    const err = await windshiftError(
      env.events.publish(`${name}.a`, TestEventSchema, { text: "x" }, { headers: { "X-Big": "v".repeat(1_100_000) } }),
    );
    expect(err.code).toBe(ErrorCode.Validation);
    expect(err.message).toMatch(
      /^headers: the headers \(\d+ bytes\) and the encoded event \(\d+ bytes\) are more than/,
    );
    expect((await env.events.streamInfo(name)).state.events).toBe(0);
    expect((await env.events.publish(`${name}.a`, TestEventSchema, { text: "x" })).id).toBe(1);
  });
});
