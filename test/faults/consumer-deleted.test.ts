/**
 * Scenario 4: the consumer is deleted under a running subscription. By
 * default the iteration ends with NOT_FOUND; with
 * `onConsumerDeleted: "recreate"` the durable comes back from its last known
 * configuration and position.
 */
import { expect, it } from "vitest";
import { TestEventSchema } from "../../gen/windshift/test/v1/events_pb.js";
import { createEvents, ErrorCode, type Event } from "../../src/index.js";
import { nextEvent, uniqueName, waitFor, windshiftError } from "../helpers.js";
import { recordingLogger } from "../log.js";
import { collectStatuses, report, since, useFaultServer, within } from "./support.js";

const env = useFaultServer();

async function setup(prefix: string): Promise<string> {
  const stream = uniqueName(prefix);
  await env.events.ensureStream(stream, { subjects: [`${stream}.>`] });
  await env.events.ensureConsumer(stream, {
    name: "worker",
    subjects: [`${stream}.a`],
    from: { start: true },
    processingTimeoutMs: 5_000,
  });
  return stream;
}

async function publish(stream: string, from: number, to: number): Promise<void> {
  for (let i = from; i <= to; i++) {
    await env.events.publish(`${stream}.a`, TestEventSchema, { text: `e${i}` }, { idempotencyKey: `e${i}` });
  }
}

it("deleting the consumer ends the iteration with NOT_FOUND (the default policy)", async () => {
  const started = performance.now();
  const stream = await setup("deleted");
  const logger = recordingLogger();
  const client = createEvents(env.nc, { logger });
  await publish(stream, 1, 3);
  const sub = await client.subscribe(stream, "worker", { schema: TestEventSchema });
  const statuses = collectStatuses(sub);
  const it = sub[Symbol.asyncIterator]();
  for (let i = 1; i <= 3; i++) await (await nextEvent(it)).ack();
  // The loop now waits on a pull the server holds open.
  const next = windshiftError(within(it.next(), 20_000, "the iteration to end"));
  const fault = performance.now();
  await env.jsm.consumers.delete(stream, "worker");
  const err = await next;
  const endedMs = since(fault);
  report("consumer-deleted", { policy: "error", endedAfterMs: endedMs, tookMs: since(started) });
  expect(err.code).toBe(ErrorCode.NotFound);
  expect(err.message).toContain("worker");
  // The subscription is closed, and says so.
  await sub.closed;
  expect(await it.next()).toEqual({ done: true, value: undefined });
  expect(logger.lines.some((l) => l.level === "error")).toBe(true);
  await waitFor(() => statuses.some((s) => s.type === "closed"), { what: "a closed status" });
  expect(statuses.map((s) => s.type)).toEqual(["consumer-deleted", "closed"]);
  expect(statuses.at(-1)).toMatchObject({ type: "closed", error: { code: ErrorCode.NotFound } });
}, 60_000);

it('onConsumerDeleted: "recreate" brings the durable back from its last known configuration and position', async () => {
  const started = performance.now();
  const stream = await setup("recreate");
  await publish(stream, 1, 10);
  const sub = await env.events.subscribe(stream, "worker", { schema: TestEventSchema, onConsumerDeleted: "recreate" });
  const statuses = collectStatuses(sub);
  const iterator = sub[Symbol.asyncIterator]();
  const first: Event[] = [];
  for (let i = 1; i <= 10; i++) first.push(await nextEvent(iterator));
  // Acked and confirmed: 1–9. Handed out but never settled: 10.
  for (const ev of first.slice(0, 9)) await ev.ack();
  await waitFor(async () => (await env.jsm.consumers.info(stream, "worker")).ack_floor.stream_seq === 9, {
    what: "the server to record the acks",
  });
  const before = await env.jsm.consumers.info(stream, "worker");

  const fault = performance.now();
  await env.jsm.consumers.delete(stream, "worker");
  await publish(stream, 11, 15);
  const after: Event[] = [];
  while (!(after.some((e) => e.id === 10) && [11, 12, 13, 14, 15].every((id) => after.some((e) => e.id === id)))) {
    const ev = await nextEvent(iterator, 20_000);
    after.push(ev);
    await ev.ack();
  }
  const resumedMs = since(fault);
  const recreated = await env.jsm.consumers.info(stream, "worker");
  report("consumer-deleted", {
    policy: "recreate",
    resumedAfterMs: resumedMs,
    deliveriesAfter: after.length,
    redeliveredAcked: after.filter((e) => e.id <= 9).length,
    tookMs: since(started),
  });

  // What was acked and confirmed does not come back; the unsettled event does.
  expect(after.filter((e) => e.id <= 9).map((e) => e.id)).toEqual([]);
  expect(after.map((e) => e.id).sort((a, b) => a - b)).toEqual([10, 11, 12, 13, 14, 15]);
  expect(statuses).toContainEqual({ type: "consumer-deleted" });
  expect(statuses).toContainEqual({ type: "consumer-recreated", fromId: 10 });
  // The same durable, with the same configuration.
  expect(recreated.name).toBe("worker");
  expect(recreated.config.durable_name).toBe("worker");
  expect(recreated.config.filter_subject).toBe(before.config.filter_subject);
  expect(recreated.config.ack_wait).toBe(before.config.ack_wait);
  expect(recreated.config.ack_policy).toBe(before.config.ack_policy);
  expect(recreated.config.max_deliver).toBe(before.config.max_deliver);
  expect(recreated.config.max_ack_pending).toBe(before.config.max_ack_pending);
  await waitFor(async () => (await env.jsm.consumers.info(stream, "worker")).num_ack_pending === 0, {
    what: "every event acked on the recreated consumer",
  });
  await sub.close();
}, 60_000);
