import { expect, it } from "vitest";
import {
  ChargeCardSchema,
  ReserveStockSchema,
  SendReceiptSchema,
  ShipSchema,
  StockReservedSchema,
} from "../../gen/windshift/demo/v1/checkout_pb.js";
import { ErrorCode, isWindshiftError, toMermaid, workflow } from "../../src/index.js";
import { windshiftError } from "../helpers.js";
import { describeEngines, uniqueName } from "./harness.js";
import { checkout, runReaches, storedTasks } from "./workflow-support.js";

describeEngines("workflows", (env) => {
  it("runs a fork and a join: each task once, the join with the events that fired it", async () => {
    const { flow, log } = checkout();
    const described = await env.events.ensureWorkflow(flow);
    expect(described).toEqual({
      stream: `WORKFLOW_${flow.name}`,
      bucket: `WORKFLOW_${flow.name}`,
      consumers: {
        "windshift.demo.v1.ChargeCard": "windshift-demo-v1-ChargeCard",
        "windshift.demo.v1.ReserveStock": "windshift-demo-v1-ReserveStock",
        "windshift.demo.v1.SendReceipt": "windshift-demo-v1-SendReceipt",
        "windshift.demo.v1.Ship": "windshift-demo-v1-Ship",
      },
    });
    await using _worker = await env.events.runWorkflow(flow, { concurrency: 4 });
    const started = await env.events.startWorkflow(
      flow,
      ChargeCardSchema,
      { orderId: "1", amount: 10n },
      {
        runId: "order-1",
      },
    );
    expect(started).toEqual({ runId: "order-1", duplicate: false });
    const run = await runReaches(env, env.events, flow, "order-1", "completed");

    expect(log.charged).toEqual(["1"]);
    expect(log.reserved).toEqual(["1"]);
    expect(log.receipts).toEqual(["1"]);
    expect(log.shipped).toEqual([{ orderId: "1", sku: "sku-1", names: ["stock-reserved", "receipt-sent"] }]);
    expect(run.tasks.map((t) => [t.id, t.type.split(".").pop(), t.parent, t.status, t.attempts])).toEqual([
      ["1", "ChargeCard", undefined, "completed", 1],
      ["2", "ReserveStock", "1", "completed", 1],
      ["3", "SendReceipt", "1", "completed", 1],
      ["4", "Ship", undefined, "completed", 1],
    ]);
    expect(run.tasks[3]?.join).toBe(1);
    expect(run.events.map((e) => [e.name, e.type, e.emittedBy]).sort()).toEqual([
      ["receipt-sent", undefined, "3"],
      ["stock-reserved", "windshift.demo.v1.StockReserved", "2"],
    ]);
    expect(run.joins).toEqual([
      {
        id: 1,
        names: ["stock-reserved", "receipt-sent"],
        type: "windshift.demo.v1.Ship",
        declaredBy: "1",
        status: "fired",
        waitingFor: [],
        taskId: "4",
      },
    ]);
    expect(run.finishedAt).toBeInstanceOf(Date);
    expect(Object.fromEntries(await storedTasks(env, env.events, flow, "order-1"))).toEqual({
      "1": 1,
      "2": 1,
      "3": 1,
      "4": 1,
    });
  });

  it("fires a join in any order, also for events emitted before the join was declared", async () => {
    const shipped: string[][] = [];
    const flow = workflow(uniqueName("early"))
      .task(ChargeCardSchema, (charge, ctx) => {
        // Emitted here, long before the join that waits for it exists.
        ctx.emit("charged", StockReservedSchema, { orderId: charge.orderId, sku: "early" });
        ctx.next(ReserveStockSchema, { orderId: charge.orderId });
      })
      .task(ReserveStockSchema, (reserve, ctx) => {
        ctx.next(SendReceiptSchema, { orderId: reserve.orderId });
        ctx.join(["receipt-sent", "charged"], ShipSchema, { orderId: reserve.orderId });
      })
      .task(SendReceiptSchema, (_receipt, ctx) => {
        ctx.emit("receipt-sent");
      })
      .task(ShipSchema, (_ship, ctx) => {
        shipped.push([...ctx.events.names, ctx.events.get("charged", StockReservedSchema)?.sku ?? ""]);
      });
    await env.events.ensureWorkflow(flow);
    await using _worker = await env.events.runWorkflow(flow);
    const { runId } = await env.events.startWorkflow(flow, ChargeCardSchema, { orderId: "2" });
    const run = await runReaches(env, env.events, flow, runId, "completed");
    expect(shipped).toEqual([["receipt-sent", "charged", "early"]]);
    expect(run.joins[0]).toMatchObject({ declaredBy: "2", status: "fired", taskId: "4" });
  });

  it("fires a join declared after all its events at once, in the commit that declares it", async () => {
    const ran: string[] = [];
    const flow = workflow(uniqueName("late"))
      .task(ChargeCardSchema, (charge, ctx) => {
        ctx.emit("a");
        ctx.emit("b");
        ctx.join(["a", "b"], ShipSchema, { orderId: charge.orderId });
      })
      .task(ShipSchema, (ship) => {
        ran.push(ship.orderId);
      });
    await env.events.ensureWorkflow(flow);
    await using _worker = await env.events.runWorkflow(flow);
    const { runId } = await env.events.startWorkflow(flow, ChargeCardSchema, { orderId: "3" });
    const run = await runReaches(env, env.events, flow, runId, "completed");
    expect(ran).toEqual(["3"]);
    expect(run.joins[0]).toMatchObject({ declaredBy: "1", status: "fired", taskId: "2" });
  });

  it("starts a run once per run id: a second start is a duplicate and schedules nothing", async () => {
    const { flow, log } = checkout();
    await env.events.ensureWorkflow(flow);
    const first = await env.events.startWorkflow(flow, ChargeCardSchema, { orderId: "9" }, { runId: "same" });
    const second = await env.events.startWorkflow(flow, ChargeCardSchema, { orderId: "9" }, { runId: "same" });
    expect([first.duplicate, second.duplicate]).toEqual([false, true]);
    await using _worker = await env.events.runWorkflow(flow);
    await runReaches(env, env.events, flow, "same", "completed");
    expect(log.charged).toEqual(["9"]);
    expect((await storedTasks(env, env.events, flow, "same")).get("1")).toBe(1);
  });

  it("waits for an external event and fires the join it completes", async () => {
    const shipped: string[] = [];
    const flow = workflow(uniqueName("external"))
      .task(ChargeCardSchema, (charge, ctx) => {
        ctx.join(["payment-confirmed"], ShipSchema, { orderId: charge.orderId });
      })
      .task(ShipSchema, (ship, ctx) => {
        shipped.push(`${ship.orderId}:${ctx.events.get("payment-confirmed", StockReservedSchema)?.sku}`);
      });
    await env.events.ensureWorkflow(flow);
    await using _worker = await env.events.runWorkflow(flow);
    const { runId } = await env.events.startWorkflow(flow, ChargeCardSchema, { orderId: "5" });
    const waiting = await env.eventually(async () => {
      const run = await env.events.inspectWorkflow(flow, runId);
      return run.tasks[0]?.status === "completed" ? run : undefined;
    });
    expect(waiting.status).toBe("running");
    expect(waiting.joins[0]).toMatchObject({ status: "waiting", waitingFor: ["payment-confirmed"] });
    expect(toMermaid(waiting)).toContain("waiting for payment-confirmed");

    const emitted = await env.events.emitWorkflowEvent(flow, runId, "payment-confirmed", StockReservedSchema, {
      orderId: "5",
      sku: "paid",
    });
    expect(emitted).toEqual({ duplicate: false, fired: ["2"] });
    const run = await runReaches(env, env.events, flow, runId, "completed");
    expect(shipped).toEqual(["5:paid"]);
    expect(run.events).toMatchObject([{ name: "payment-confirmed", emittedBy: "external" }]);
    expect(await env.events.emitWorkflowEvent(flow, runId, "payment-confirmed")).toEqual({
      duplicate: true,
      fired: [],
    });
    expect(toMermaid(run)).toContain('e_payment_45_confirmed -- "payment-confirmed" --> t2');
    expect((await windshiftError(env.events.emitWorkflowEvent(flow, "no-such-run", "x"))).code).toBe(
      ErrorCode.NotFound,
    );
  });

  it("does not run a delayed task before its delay", async () => {
    const { flow, log } = checkout({ receiptDelayMs: 2_000 });
    await env.events.ensureWorkflow(flow);
    await using _worker = await env.events.runWorkflow(flow, { concurrency: 2 });
    const { runId } = await env.events.startWorkflow(flow, ChargeCardSchema, { orderId: "7" });
    const scheduled = await env.eventually(async () => {
      const run = await env.events.inspectWorkflow(flow, runId);
      return run.tasks[1]?.status === "completed" ? run : undefined;
    });
    const receipt = scheduled.tasks[2];
    expect(receipt?.type).toBe("windshift.demo.v1.SendReceipt");
    const notBefore = receipt?.notBefore?.getTime() ?? 0;
    expect(notBefore - (receipt?.scheduledAt.getTime() ?? 0)).toBe(2_000);
    const run = await runReaches(env, env.events, flow, runId, "completed");
    const sent = run.tasks[2];
    expect(sent?.startedAt?.getTime()).toBeGreaterThanOrEqual(notBefore);
    expect(sent?.attempts).toBe(1);
    expect(log.receipts).toEqual(["7"]);
    expect(log.shipped).toHaveLength(1);
  });

  it("splits a workflow across workers, each running its own task types", async () => {
    const { flow, log } = checkout();
    await env.events.ensureWorkflow(flow);
    const other = await env.client();
    await using charging = await env.events.runWorkflow(flow, { tasks: [ChargeCardSchema] });
    await using rest = await other.runWorkflow(flow, { tasks: [ReserveStockSchema, SendReceiptSchema, ShipSchema] });
    expect(charging.tasks).toEqual(["windshift.demo.v1.ChargeCard"]);
    const { runId } = await env.events.startWorkflow(flow, ChargeCardSchema, { orderId: "8" });
    await runReaches(env, env.events, flow, runId, "completed");
    expect(log.shipped).toHaveLength(1);
    await env.eventually(() => charging.stats.acked === 1 && rest.stats.acked === 3);
  });

  it("schedules once when a finished task is delivered again: the handler does not run twice", async () => {
    const { flow, log } = checkout();
    await env.events.ensureWorkflow(flow);
    await using _worker = await env.events.runWorkflow(flow);
    const { runId } = await env.events.startWorkflow(flow, ChargeCardSchema, { orderId: "r" });
    await runReaches(env, env.events, flow, runId, "completed");
    // The first task again, as after an ack that was lost: past the
    // deduplication (no idempotency key), so the stream stores it.
    await env.events.publish(
      `workflow.${flow.name}.task.windshift.demo.v1.ChargeCard`,
      ChargeCardSchema,
      {
        orderId: "r",
      },
      { headers: { "WS-Workflow-Run": runId, "WS-Workflow-Task": "1" } },
    );
    await env.eventually(async () => {
      const p = await env.progress(`WORKFLOW_${flow.name}`, "windshift-demo-v1-ChargeCard");
      return p.pending === 0 && p.unsettled === 0 && p.ackFloor > 0;
    });
    expect(log.charged).toEqual(["r"]);
    const stored = await storedTasks(env, env.events, flow, runId);
    expect(Object.fromEntries(stored)).toEqual({ "1": 2, "2": 1, "3": 1, "4": 1 });
  });

  it("expires a finished run's state retainMs after it finished", async () => {
    const { flow } = checkout();
    await env.events.ensureWorkflow(flow, { retainMs: 2_000 });
    await using _worker = await env.events.runWorkflow(flow, { concurrency: 2 });
    const { runId } = await env.events.startWorkflow(flow, ChargeCardSchema, { orderId: "c" });
    await runReaches(env, env.events, flow, runId, "completed");
    const expired = () =>
      env.events.inspectWorkflow(flow, runId).then(
        () => false,
        (err: unknown) => isWindshiftError(err, ErrorCode.NotFound),
      );
    expect(await expired()).toBe(false);
    await env.eventually(expired, { what: "the run expired" });
  });
});
