import { expect, it } from "vitest";
import { TestEventSchema } from "../../gen/windshift/test/v1/events_pb.js";
import { ErrorCode, handle, PermanentError, WindshiftError } from "../../src/index.js";
import { recordingLogger } from "../log.js";
import { describeEngines, streamWithWorker } from "./harness.js";
import { expectStats, publishTexts, publishUndecodable } from "./process-support.js";

describeEngines("process: retries", (env) => {
  it("retries an INVALID_DATA error that is not about the event's own data", async () => {
    const { stream, consumer } = await streamWithWorker(env.events);
    const attempts: number[] = [];
    await using processor = await env.events.process(
      stream,
      consumer,
      handle(TestEventSchema, (_data, event) => {
        attempts.push(event.deliveryAttempt);
        if (event.deliveryAttempt === 1) throw new WindshiftError(ErrorCode.InvalidData, "a message of our own");
      }),
      { backoff: { initialDelayMs: 10 } },
    );
    await publishTexts(env, stream, ["x"]);
    await env.settled(stream, consumer, 1);
    expect(attempts).toEqual([1, 2]);
    await expectStats(env, processor, { retried: 1, acked: 1, rejected: 0 });
  });

  it("does not deliver a failed event again before its backoff delay, and does after it", async () => {
    const { stream, consumer } = await streamWithWorker(env.events);
    const attempts: { attempt: number; at: number }[] = [];
    await using processor = await env.events.process(
      stream,
      consumer,
      handle(TestEventSchema, (_data, event) => {
        attempts.push({ attempt: event.deliveryAttempt, at: env.now() });
        if (event.deliveryAttempt === 1) throw new Error("not yet");
      }),
      { backoff: { initialDelayMs: 500, jitter: 0 } },
    );
    await publishTexts(env, stream, ["x"]);
    await env.eventually(() => processor.stats.retried === 1, { what: "the failed event given back" });
    // Well inside the delay (what it took to see the give-back is the margin): not back yet.
    await env.elapse(300);
    expect(attempts.map((a) => a.attempt)).toEqual([1]);
    expect(await env.progress(stream, consumer)).toMatchObject({ ackFloor: 0 });
    // Past the delay: delivered again, and handled.
    await env.elapse(300);
    await env.eventually(() => attempts.length === 2, { timeoutMs: 1_000, what: "the second attempt" });
    await env.settled(stream, consumer, 1);
    const [first, second] = attempts as [{ attempt: number; at: number }, { attempt: number; at: number }];
    expect(second.attempt).toBe(2);
    expect(second.at - first.at).toBeGreaterThanOrEqual(490);
    expect(second.at - first.at).toBeLessThan(1_600);
    await expectStats(env, processor, { failed: 1, retried: 1, acked: 1 });
  });

  it("retries a throwing handler after the backoff delays, by delivery attempt", async () => {
    const { stream, consumer } = await streamWithWorker(env.events);
    const attempts: { attempt: number; at: number }[] = [];
    await using processor = await env.events.process(
      stream,
      consumer,
      handle(TestEventSchema, (_data, event) => {
        attempts.push({ attempt: event.deliveryAttempt, at: env.now() });
        if (event.deliveryAttempt < 3) throw new Error("not yet");
      }),
      { backoff: { initialDelayMs: 300, multiplier: 2, jitter: 0 } },
    );
    await publishTexts(env, stream, ["retry me"]);
    await env.settled(stream, consumer, 1);
    expect(attempts.map((a) => a.attempt)).toEqual([1, 2, 3]);
    const [first, second, third] = attempts as unknown as [{ at: number }, { at: number }, { at: number }];
    // The engine holds a given-back event for at least the delay; allow generous scheduling slack above.
    expect(second.at - first.at).toBeGreaterThanOrEqual(290);
    expect(second.at - first.at).toBeLessThan(5_000);
    expect(third.at - second.at).toBeGreaterThanOrEqual(590);
    expect(third.at - second.at).toBeLessThan(5_000);
    await expectStats(env, processor, { failed: 2, retried: 2, acked: 1 });
  });

  it("asks a backoff decider for the delay, and rejects permanently when it says so", async () => {
    const { stream, consumer } = await streamWithWorker(env.events);
    const calls: number[] = [];
    const asked: string[] = [];
    await using processor = await env.events.process(
      stream,
      consumer,
      handle(TestEventSchema, (_data, event) => {
        calls.push(event.deliveryAttempt);
        throw new Error(event.deliveryAttempt === 1 ? "transient" : "fatal");
      }),
      {
        backoff: (event, error) => {
          asked.push(`${event.deliveryAttempt}:${(error as Error).message}`);
          return (error as Error).message === "fatal" ? -1 : 50;
        },
      },
    );
    await publishTexts(env, stream, ["x"]);
    await env.settled(stream, consumer, 1);
    await env.eventually(() => processor.stats.rejected === 1, { what: "the permanent rejection" });
    expect(calls).toEqual([1, 2]);
    expect(asked).toEqual(["1:transient", "2:fatal"]);
  });
});

describeEngines("process: giving up", (env) => {
  it("does not retry a PermanentError, and logs the rejection without a dead-letter subject", async () => {
    const { stream, consumer } = await streamWithWorker(env.events, { processingTimeoutMs: 300 });
    const logger = recordingLogger();
    const events = await env.client({ logger });
    let calls = 0;
    await using processor = await events.process(
      stream,
      consumer,
      handle(TestEventSchema, () => {
        calls++;
        throw new PermanentError("bad order");
      }),
      { backoff: { initialDelayMs: 10 } },
    );
    await publishTexts(env, stream, ["bad"]);
    await env.settled(stream, consumer, 1);
    expect(calls).toBe(1);
    await expectStats(env, processor, { failed: 1, rejected: 1, retried: 0 });
    // Neither the backoff delay nor the processing timeout brings it back.
    await env.elapse(500);
    expect(calls).toBe(1);
    expect(await env.progress(stream, consumer)).toEqual({ ackFloor: 1, unsettled: 0, pending: 0 });
    const line = logger.lines.find((l) => l.level === "error");
    expect(line?.message).toMatch(/rejected permanently/);
    expect(line?.fields).toMatchObject({ id: 1, reason: "permanent", error: "PermanentError: bad order" });
  });

  it("keeps going past a poison event: undecodable data is rejected permanently, not handed to the handler", async () => {
    const { stream, consumer } = await streamWithWorker(env.events);
    await publishUndecodable(env, `${stream}.a`);
    await publishTexts(env, stream, ["fine"]);
    const texts: string[] = [];
    await using processor = await env.events.process(
      stream,
      consumer,
      handle(TestEventSchema, (data) => {
        texts.push(data.text);
      }),
    );
    await env.settled(stream, consumer, 2);
    expect(texts).toEqual(["fine"]);
    await expectStats(env, processor, { acked: 1, rejected: 1, retried: 0 });
  });

  it("gives up after maxAttempts", async () => {
    const { stream, consumer } = await streamWithWorker(env.events);
    const calls: number[] = [];
    await using processor = await env.events.process(
      stream,
      consumer,
      handle(TestEventSchema, (_data, event) => {
        calls.push(event.deliveryAttempt);
        throw new Error("always");
      }),
      { maxAttempts: 3, backoff: { initialDelayMs: 10 } },
    );
    await publishTexts(env, stream, ["x"]);
    await env.settled(stream, consumer, 1);
    expect(calls).toEqual([1, 2, 3]);
    await expectStats(env, processor, { failed: 3, retried: 2, rejected: 1 });
  });

  it("never gives an event more attempts than the consumer's maxDeliveryAttempts", async () => {
    const { stream, consumer } = await streamWithWorker(env.events, { maxDeliveryAttempts: 2 });
    const logger = recordingLogger();
    const events = await env.client({ logger });
    const calls: number[] = [];
    await using processor = await events.process(
      stream,
      consumer,
      handle(TestEventSchema, (_data, event) => {
        calls.push(event.deliveryAttempt);
        throw new Error("always");
      }),
      { maxAttempts: 5, backoff: { initialDelayMs: 10 } },
    );
    await publishTexts(env, stream, ["x"]);
    await env.settled(stream, consumer, 1);
    expect(calls).toEqual([1, 2]);
    await expectStats(env, processor, { rejected: 1 });
    expect(logger.lines.some((l) => l.level === "warn" && /maxDeliver/.test(l.message))).toBe(true);
  });
});
