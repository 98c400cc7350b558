/**
 * 200 checkout runs (charge → fork: reserve stock, send receipt → join → ship)
 * on two workers while their single server is killed and restarted on the
 * same store: every run completes, every task is scheduled and committed
 * once. Handlers may run again (side effects are at-least-once: a commit
 * lost in the crash, or a task event the restarted server hands out a second
 * time), but only as a new, recorded attempt.
 */
import type { NatsConnection } from "@nats-io/nats-core";
import { afterAll, expect, it } from "vitest";
import {
  ChargeCardSchema,
  ReserveStockSchema,
  SendReceiptSchema,
  ShipSchema,
  StockReservedSchema,
} from "../../gen/windshift/demo/v1/checkout_pb.js";
import { createEvents, type TaskContext, type WorkflowRun, workflow } from "../../src/index.js";
import { nextEvent, uniqueName, waitFor } from "../helpers.js";
import { connectTo, report, since, useFaultServer } from "./support.js";

const env = useFaultServer();
const connections: NatsConnection[] = [];

afterAll(async () => {
  await Promise.all(connections.map((nc) => nc.close().catch(() => {})));
});

const RUNS = 200;
const TYPES = ["ChargeCard", "ReserveStock", "SendReceipt", "Ship"];

/** The checkout workflow, recording the attempt of every handler run by `<runId>/<taskId>`. */
function checkout() {
  const ran = new Map<string, number[]>();
  const shipped: string[] = [];
  const record = (ctx: TaskContext): void => {
    const key = `${ctx.runId}/${ctx.taskId}`;
    ran.set(key, [...(ran.get(key) ?? []), ctx.attempt]);
  };
  const flow = workflow(uniqueName("restart"))
    .task(ChargeCardSchema, (charge, ctx) => {
      record(ctx);
      ctx.next(ReserveStockSchema, { orderId: charge.orderId });
      ctx.next(SendReceiptSchema, { orderId: charge.orderId });
      ctx.join(["stock-reserved", "receipt-sent"], ShipSchema, { orderId: charge.orderId });
    })
    .task(ReserveStockSchema, (reserve, ctx) => {
      record(ctx);
      ctx.emit("stock-reserved", StockReservedSchema, { orderId: reserve.orderId, sku: `sku-${reserve.orderId}` });
    })
    .task(SendReceiptSchema, (_receipt, ctx) => {
      record(ctx);
      ctx.emit("receipt-sent");
    })
    .task(ShipSchema, (ship, ctx) => {
      record(ctx);
      shipped.push(`${ship.orderId}:${ctx.events.get("stock-reserved", StockReservedSchema)?.sku}`);
    });
  return { flow, ran, shipped };
}

it("200 fork/join runs ride out a server restart: every run completes, every task scheduled and committed once", async () => {
  const started = performance.now();
  const { flow, ran, shipped } = checkout();
  await env.events.ensureWorkflow(flow, { processingTimeoutMs: 5_000 });
  const other = await connectTo(env.server.url);
  connections.push(other);
  const options = { concurrency: 16, backoff: { initialDelayMs: 100, maxDelayMs: 1_000 } };
  const workers = [await env.events.runWorkflow(flow, options), await createEvents(other).runWorkflow(flow, options)];
  let stopped = 0;
  for (const w of workers) void w.closed.then(() => stopped++);

  const runIds = Array.from({ length: RUNS }, (_, i) => `run-${i}`);
  await Promise.all(
    runIds.map((runId, i) =>
      env.events.startWorkflow(flow, ChargeCardSchema, { orderId: String(i), amount: BigInt(i) }, { runId }),
    ),
  );
  await waitFor(() => shipped.length >= RUNS / 10, { timeoutMs: 20_000, intervalMs: 1, what: "runs under way" }).catch(
    async (err: unknown) => {
      const sample = await env.events.inspectWorkflow(flow, "run-0").catch(String);
      const stats = JSON.stringify(workers.map((w) => w.stats));
      throw new Error(`${String(err)}: ${ran.size} tasks ran; workers ${stats}; run-0: ${JSON.stringify(sample)}`);
    },
  );
  const shippedAtRestart = shipped.length;
  const fault = performance.now();
  await env.server.restart();
  const restartMs = since(fault);

  const runs = new Map<string, WorkflowRun>();
  let lastError = "none";
  const pending = () => runIds.filter((id) => runs.get(id)?.status !== "completed");
  await waitFor(
    async () => {
      await Promise.all(
        pending().map(async (id) => {
          try {
            runs.set(id, await env.events.inspectWorkflow(flow, id));
          } catch (err) {
            lastError = String(err);
          }
        }),
      );
      return pending().length === 0;
    },
    { timeoutMs: 90_000, intervalMs: 100, what: "every run completed" },
  ).catch((err: unknown) => {
    const stuck = pending();
    const sample = stuck.slice(0, 3).map((id) => JSON.stringify(runs.get(id)));
    throw new Error(`${String(err)}: ${stuck.length} runs not completed (last error: ${lastError}); ${sample}`);
  });
  const completeMs = since(fault);

  // Every task event the stream holds, read through a fresh consumer.
  const stream = `WORKFLOW_${flow.name}`;
  const reader = await env.events.ensureConsumer(stream, { from: { start: true }, inactiveThresholdMs: 60_000 });
  const { num_pending: total } = await env.jsm.consumers.info(stream, reader.name);
  const stored = new Map<string, number>();
  {
    await using sub = await env.events.subscribe(stream, reader.name, { confirmAcks: false });
    const it = sub[Symbol.asyncIterator]();
    for (let i = 0; i < total; i++) {
      const event = await nextEvent(it);
      await event.ack();
      const key = `${event.headers.get("WS-Workflow-Run")}/${event.headers.get("WS-Workflow-Task")}`;
      stored.set(key, (stored.get(key) ?? 0) + 1);
    }
  }

  const handlerRuns = [...ran.values()].reduce((n, attempts) => n + attempts.length, 0);
  const stats = workers.map((w) => w.stats);
  report("workflow-restart", {
    runs: RUNS,
    shippedAtRestart,
    restartMs,
    completeAfterRestartMs: completeMs,
    taskEvents: total,
    handlerRuns,
    handlerReruns: handlerRuns - RUNS * TYPES.length,
    shipReruns: shipped.length - RUNS,
    retried: stats.reduce((n, s) => n + s.retried, 0),
    tookMs: since(started),
  });

  expect(stopped, "a worker stopped by itself").toBe(0);
  expect(shippedAtRestart, "the restart came before every run had shipped").toBeLessThan(RUNS);
  const expectedTasks = runIds.flatMap((id) => TYPES.map((_, i) => `${id}/${i + 1}`));
  // Zero lost runs: each has its four tasks, each committed (completed), the
  // join fired once, into task 4.
  for (const runId of runIds) {
    const run = runs.get(runId);
    expect(
      run?.tasks.map((t) => [t.id, t.type.split(".").pop(), t.status]),
      runId,
    ).toEqual(TYPES.map((type, i) => [String(i + 1), type, "completed"]));
    expect(
      run?.joins.map((j) => [j.status, j.taskId]),
      runId,
    ).toEqual([["fired", "4"]]);
  }
  // Zero duplicate schedules: each task event stored once, and nothing else.
  expect([...stored].filter(([, n]) => n !== 1)).toEqual([]);
  expect([...stored.keys()].sort()).toEqual([...expectedTasks].sort());
  // Every task's handler ran, each time as an attempt of its own that the run
  // recorded: a rerun is a new attempt, never a second copy of one.
  const unaccounted = expectedTasks.filter((key) => {
    const [runId, taskId] = key.split("/");
    const recorded = runs.get(runId as string)?.tasks.find((t) => t.id === taskId)?.attempts ?? 0;
    const attempts = ran.get(key) ?? [];
    return attempts.length === 0 || new Set(attempts).size !== attempts.length || attempts.some((a) => a > recorded);
  });
  expect(
    unaccounted.map((key) => `${key}: ran ${JSON.stringify(ran.get(key))}`),
    "handler runs that are not distinct recorded attempts",
  ).toEqual([]);
  // Each run shipped, with the data of the event its join waited for.
  expect(new Set(shipped)).toEqual(new Set(runIds.map((_, i) => `${i}:sku-${i}`)));

  await Promise.all(workers.map((w) => w.close()));
}, 120_000);
