import { jetstreamManager } from "@nats-io/jetstream";
import { describe, expect, it } from "vitest";
import { TestEventSchema } from "../../gen/windshift/test/v1/events_pb.js";
import { ErrorCode, handle } from "../../src/index.js";
import { streamWithWorker, useServer } from "../helpers.js";
import { recordingLogger } from "../log.js";

const env = useServer();

describe("process: the consumer deleted on the server", () => {
  it("resolves `closed` with NOT_FOUND when the consumer is deleted under it, and logs why it stopped", async () => {
    const { stream, consumer } = await streamWithWorker(env.events);
    const logger = recordingLogger();
    const events = await env.client({ logger });
    const handled: string[] = [];
    const doomed = await events.process(
      stream,
      consumer,
      handle(TestEventSchema, (data) => {
        handled.push(data.text);
      }),
    );
    const jsm = await jetstreamManager(env.nc);
    await jsm.consumers.delete(stream, consumer);
    const err = await doomed.closed;
    expect(err?.code).toBe(ErrorCode.NotFound);
    await doomed.close(); // still safe, never rejects
    expect(logger.lines.some((l) => l.level === "error" && l.message === "processor stopped")).toBe(true);
    expect(handled).toEqual([]);
  });
});
