/**
 * Scenario 5: handlers take longer than the consumer's processing timeout.
 * Auto-ping (the default) keeps their events from being redelivered; without
 * it, the server redelivers and `deliveryAttempt` shows it.
 */
import { expect, it } from "vitest";
import { type TestEvent, TestEventSchema } from "../../gen/windshift/test/v1/events_pb.js";
import type { Event } from "../../src/index.js";
import { expectNoEvent, holdFor, nextEvent, uniqueName, waitFor } from "../helpers.js";
import { report, since, useFaultServer } from "./support.js";

const PROCESSING_TIMEOUT_MS = 2_000;
const HANDLER_MS = 5_000;

const env = useFaultServer();

async function setup(prefix: string): Promise<string> {
  const stream = uniqueName(prefix);
  await env.events.ensureStream(stream, { subjects: [`${stream}.>`] });
  await env.events.ensureConsumer(stream, {
    name: "worker",
    from: { start: true },
    processingTimeoutMs: PROCESSING_TIMEOUT_MS,
  });
  for (let i = 1; i <= 3; i++) {
    await env.events.publish(`${stream}.a`, TestEventSchema, { text: `e${i}` }, { idempotencyKey: `e${i}` });
  }
  return stream;
}

/** A handler that works for longer than the processing timeout, then acks. */
async function slowHandler(event: Event): Promise<void> {
  // The handler's slowness is the condition under test.
  await holdFor(HANDLER_MS);
  await event.ack();
}

it("auto-ping (the default): a handler slower than the processing timeout sees no redelivery", async () => {
  const started = performance.now();
  const stream = await setup("slow_ping");
  const sub = await env.events.subscribe(stream, "worker", { schema: TestEventSchema, prefetch: 3 });
  const it = sub[Symbol.asyncIterator]();
  const taken = [await nextEvent(it), await nextEvent(it), await nextEvent(it)];
  expect(taken.map((e) => [e.id, e.deliveryAttempt])).toEqual([
    [1, 1],
    [2, 1],
    [3, 1],
  ]);
  const handling = Promise.all(taken.map(slowHandler));
  // Nothing comes back while the handlers work 2.5 processing timeouts long.
  const quiet = await expectNoEvent(it, HANDLER_MS + 500);
  await handling;
  const info = await env.jsm.consumers.info(stream, "worker");
  report("slow-handlers", {
    autoPing: true,
    handlerMs: HANDLER_MS,
    redelivered: info.num_redelivered,
    tookMs: since(started),
  });
  expect(info.num_redelivered).toBe(0);
  expect(info.num_ack_pending).toBe(0);
  expect(info.ack_floor.stream_seq).toBe(3);
  expect(taken.every((e) => e.settled)).toBe(true);
  await sub.close();
  expect(await quiet.next).toEqual({ done: true, value: undefined });
}, 60_000);

it("autoPing: false: the server redelivers, and deliveryAttempt says so", async () => {
  const started = performance.now();
  const stream = await setup("slow_noping");
  const sub = await env.events.subscribe(stream, "worker", {
    schema: TestEventSchema,
    prefetch: 3,
    autoPing: false,
  });
  const it = sub[Symbol.asyncIterator]();
  const taken = [await nextEvent(it), await nextEvent(it), await nextEvent(it)];
  const deliveredAt = performance.now();
  const handling = Promise.all(taken.map(slowHandler));
  const again: Event<TestEvent>[] = [];
  while (again.length < 3) again.push(await nextEvent(it, PROCESSING_TIMEOUT_MS + 3_000));
  const redeliveredAfterMs = since(deliveredAt);
  expect(again.map((e) => [e.id, e.deliveryAttempt])).toEqual([
    [1, 2],
    [2, 2],
    [3, 2],
  ]);
  expect(again.map((e) => e.data.text)).toEqual(["e1", "e2", "e3"]);
  // Both deliveries are settled; the server accepts the late acks of the first too.
  for (const ev of again) await ev.ack();
  await handling;
  await waitFor(async () => (await env.jsm.consumers.info(stream, "worker")).num_ack_pending === 0, {
    what: "every delivery acked",
  });
  const info = await env.jsm.consumers.info(stream, "worker");
  report("slow-handlers", {
    autoPing: false,
    redeliveredAfterMs,
    redelivered: info.num_redelivered,
    tookMs: since(started),
  });
  expect(redeliveredAfterMs).toBeGreaterThanOrEqual(PROCESSING_TIMEOUT_MS - 100);
  await sub.close();
}, 60_000);
