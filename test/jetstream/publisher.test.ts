// What only a NATS connection has: maxPublishesInFlight (publishes awaiting
// the server's acknowledgement) and a connection that closes. Pipelining many
// publishes is in test/conformance/publish.test.ts.
import { describe, expect, it } from "vitest";
import { TestEventSchema } from "../../gen/windshift/test/v1/events_pb.js";
import { createEvents, ErrorCode } from "../../src/index.js";
import { uniqueName, useServer, waitFor, windshiftError } from "../helpers.js";

const env = useServer();

/** A subject with a subscriber that records arrivals and never replies. */
async function silentSubject(): Promise<{ subject: string; arrivals: number[] }> {
  const subject = `${uniqueName("silent")}.a`;
  const arrivals: number[] = [];
  const nc = await env.connect();
  nc.subscribe(subject, {
    callback: () => {
      arrivals.push(performance.now());
    },
  });
  await nc.flush();
  return { subject, arrivals };
}

describe("pipelined publishing", () => {
  it("a publish beyond maxPublishesInFlight waits for room", async () => {
    const { subject, arrivals } = await silentSubject();
    const events = createEvents(await env.connect(), { maxPublishesInFlight: 2 });
    const settled: number[] = [];
    const attempts = [0, 1, 2].map((i) =>
      windshiftError(events.publish(subject, TestEventSchema, {}, { timeoutMs: 300 })).then((err) => {
        settled.push(performance.now());
        expect(err.code).toBe(ErrorCode.PublishTimeout);
        return i;
      }),
    );
    await Promise.all(attempts);
    expect(arrivals).toHaveLength(3);
    // The third was sent only once one of the first two had timed out.
    expect(arrivals[2]).toBeGreaterThanOrEqual(Math.min(settled[0] ?? 0, settled[1] ?? 0) - 1);
  });

  it("aborting a publish that waits for room rejects it without sending", async () => {
    const { subject, arrivals } = await silentSubject();
    const events = createEvents(await env.connect(), { maxPublishesInFlight: 1 });
    const first = windshiftError(events.publish(subject, TestEventSchema, {}, { timeoutMs: 2_000 }));
    const controller = new AbortController();
    const second = windshiftError(events.publish(subject, TestEventSchema, {}, { signal: controller.signal }));
    await waitFor(() => arrivals.length === 1, { what: "the first publish" });
    controller.abort();
    expect((await second).code).toBe(ErrorCode.Aborted);
    expect((await first).code).toBe(ErrorCode.PublishTimeout);
    expect(arrivals).toHaveLength(1);
  });

  it("closing the connection fails pending publishes with CLOSED", async () => {
    const { subject } = await silentSubject();
    const nc = await env.connect();
    const events = createEvents(nc);
    const pending = windshiftError(events.publish(subject, TestEventSchema, {}, { timeoutMs: 10_000 }));
    await nc.flush();
    await nc.close();
    expect((await pending).code).toBe(ErrorCode.Closed);
    expect((await windshiftError(events.publish(subject, TestEventSchema, {}))).code).toBe(ErrorCode.Closed);
  });

  it("rejects maxPublishesInFlight that is not a positive whole number", async () => {
    for (const bad of [0, -1, 1.5, Number.NaN, "8"]) {
      const err = await windshiftError(() => createEvents(env.nc, { maxPublishesInFlight: bad as number }));
      expect(err.code).toBe(ErrorCode.Validation);
    }
  });
});
