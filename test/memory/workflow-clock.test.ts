import { expect, it } from "vitest";
import { ChargeCardSchema, SendReceiptSchema } from "../../gen/windshift/demo/v1/checkout_pb.js";
import { workflow } from "../../src/index.js";
import { createMemoryEvents, createTestClock } from "../../src/testing/index.js";

it("runs a delayed task when the test clock passes its delay, not a millisecond sooner", async () => {
  const sent: string[] = [];
  const flow = workflow("receipts")
    .task(ChargeCardSchema, (charge, ctx) => {
      ctx.next(SendReceiptSchema, { orderId: charge.orderId }, { delayMs: 60_000 });
    })
    .task(SendReceiptSchema, (receipt) => {
      sent.push(receipt.orderId);
    });
  const clock = createTestClock();
  await using events = createMemoryEvents({ clock });
  await events.ensureWorkflow(flow);
  await using _worker = await events.runWorkflow(flow);
  await events.startWorkflow(flow, ChargeCardSchema, { orderId: "1" }, { runId: "r1" });
  await clock.advance(0);
  const waiting = await events.inspectWorkflow(flow, "r1");
  expect(waiting.tasks.map((t) => t.status)).toEqual(["completed", "scheduled"]);
  await clock.advance(59_999);
  expect(sent).toEqual([]);
  await clock.advance(1);
  expect(sent).toEqual(["1"]);
  const run = await events.inspectWorkflow(flow, "r1");
  expect(run.status).toBe("completed");
  expect(run.tasks[1]).toMatchObject({ attempts: 1, status: "completed" });
  expect(run.tasks[1]?.startedAt?.getTime()).toBe(run.tasks[1]?.notBefore?.getTime());
});
