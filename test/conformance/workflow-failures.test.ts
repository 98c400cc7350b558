import { expect, it } from "vitest";
import {
  ChargeCardSchema,
  ReserveStockSchema,
  SendReceiptSchema,
  ShipSchema,
  StockReservedSchema,
} from "../../gen/windshift/demo/v1/checkout_pb.js";
import { TestEventSchema } from "../../gen/windshift/test/v1/events_pb.js";
import { ErrorCode, isWindshiftError, PermanentError, type TaskContext, workflow } from "../../src/index.js";
import { expectStats, waitFor, windshiftError } from "../helpers.js";
import { describeEngines, nextOf, uniqueName } from "./harness.js";
import { checkout, runReaches, storedTasks } from "./workflow-support.js";

const quickRetry = { initialDelayMs: 10, maxDelayMs: 10, jitter: 0 } as const;

describeEngines("workflow failures", (env) => {
  it("retries a handler that threw after asking for a next task: the next task is scheduled once", async () => {
    const attempts: number[] = [];
    const { flow, log } = checkout({
      charge: (ctx) => {
        attempts.push(ctx.attempt);
        if (ctx.attempt === 1) throw new Error("card network down");
      },
    });
    await env.events.ensureWorkflow(flow);
    await using _worker = await env.events.runWorkflow(flow, { backoff: quickRetry, concurrency: 2 });
    const { runId } = await env.events.startWorkflow(flow, ChargeCardSchema, { orderId: "t" });
    const run = await runReaches(env, env.events, flow, runId, "completed");
    expect(attempts).toEqual([1, 2]);
    expect(log.charged).toEqual(["t", "t"]);
    expect(log.reserved).toEqual(["t"]);
    expect(log.shipped).toHaveLength(1);
    expect(run.tasks.map((t) => [t.id, t.attempts, t.error])).toEqual([
      ["1", 2, undefined],
      ["2", 1, undefined],
      ["3", 1, undefined],
      ["4", 1, undefined],
    ]);
    expect(Object.fromEntries(await storedTasks(env, env.events, flow, runId))).toEqual({
      "1": 1,
      "2": 1,
      "3": 1,
      "4": 1,
    });
  });

  it("fails the task and the run after maxAttempts and dead-letters the task event", async () => {
    const dlq = uniqueName("dlq");
    await env.events.ensureStream(dlq, { subjects: [`${dlq}.>`] });
    await env.events.ensureConsumer(dlq, { name: "audit", from: { start: true } });
    const { flow, log } = checkout({
      // Each attempt fails once the other branch has run (in the worker's second slot), so that the run
      // fails after it whatever the engine's timing.
      reserve: async () => {
        await waitFor(() => log.receipts.length > 0, { what: "the receipt branch to run" });
        throw new Error("warehouse offline");
      },
    });
    await env.events.ensureWorkflow(flow);
    await using worker = await env.events.runWorkflow(flow, {
      concurrency: 2,
      maxAttempts: 3,
      backoff: quickRetry,
      deadLetter: { subject: `${dlq}.workflow` },
    });
    const { runId } = await env.events.startWorkflow(flow, ChargeCardSchema, { orderId: "f" });
    const run = await runReaches(env, env.events, flow, runId, "failed");
    const reserve = run.tasks.find((t) => t.type.endsWith("ReserveStock"));
    expect(reserve).toMatchObject({ status: "failed", attempts: 3, error: "warehouse offline" });
    expect(run.error).toBe("task 2 (windshift.demo.v1.ReserveStock) failed: warehouse offline");
    expect(run.finishedAt).toBeInstanceOf(Date);
    // The other branch ran; the join waits for an event that never comes.
    expect(log.receipts).toEqual(["f"]);
    expect(log.shipped).toEqual([]);
    expect(run.joins[0]).toMatchObject({ status: "waiting", waitingFor: ["stock-reserved"] });

    await using sub = await env.events.subscribe(dlq, "audit", { schema: ReserveStockSchema });
    const dead = await nextOf(sub[Symbol.asyncIterator]());
    expect(dead.data.orderId).toBe("f");
    expect(dead.headers.get("WS-Workflow-Run")).toBe(runId);
    expect(dead.headers.get("WS-Workflow-Task")).toBe("2");
    expect(dead.headers.get("WS-Dead-Letter-Reason")).toBe("permanent");
    await dead.ack();
    await expectStats(worker, { deadLettered: 1, retried: 2 });
  });

  it("fails a task at once on a PermanentError, and on a next task the workflow does not have", async () => {
    const seen: unknown[] = [];
    const flow = workflow(uniqueName("permanent"))
      .task(ChargeCardSchema, (charge, ctx) => {
        ctx.next(SendReceiptSchema, { orderId: charge.orderId });
      })
      .task(SendReceiptSchema, () => {
        throw new PermanentError("no email address");
      })
      .task(ShipSchema, (_ship, ctx) => {
        try {
          ctx.next(TestEventSchema, { text: "not a task" });
        } catch (err) {
          seen.push(err);
          throw err;
        }
      });
    await env.events.ensureWorkflow(flow);
    await using worker = await env.events.runWorkflow(flow, { backoff: quickRetry });
    const first = await env.events.startWorkflow(flow, ChargeCardSchema, { orderId: "p" });
    const failed = await runReaches(env, env.events, flow, first.runId, "failed");
    expect(failed.tasks[1]).toMatchObject({ status: "failed", attempts: 1, error: "no email address" });

    const second = await env.events.startWorkflow(flow, ShipSchema, { orderId: "q" });
    const invalid = await runReaches(env, env.events, flow, second.runId, "failed");
    expect(invalid.tasks[0]).toMatchObject({ status: "failed", attempts: 1 });
    expect(isWindshiftError(seen[0], ErrorCode.Validation)).toBe(true);
    expect(invalid.tasks[0]?.error).toContain("windshift.test.v1.TestEvent is not a task of workflow");
    await expectStats(worker, { rejected: 2 });
  });

  it("fails a task whose requests cannot be stored (the run's state would pass the max payload)", async () => {
    const big = "x".repeat(400_000);
    const flow = workflow(uniqueName("large")).task(ChargeCardSchema, (charge, ctx) => {
      ctx.emit("a", StockReservedSchema, { orderId: charge.orderId, sku: big });
      ctx.emit("b", StockReservedSchema, { orderId: charge.orderId, sku: big });
    });
    await env.events.ensureWorkflow(flow);
    await using worker = await env.events.runWorkflow(flow);
    const { runId } = await env.events.startWorkflow(flow, ChargeCardSchema, { orderId: "l" });
    const run = await runReaches(env, env.events, flow, runId, "failed");
    expect(run.tasks[0]).toMatchObject({ status: "failed", attempts: 1 });
    expect(run.tasks[0]?.error).toMatch(
      /^the state of run ".+" would be \d+ bytes, more than the server's max payload/,
    );
    expect(run.events).toEqual([]);
    await expectStats(worker, { rejected: 1 });
  });

  it("rejects task events of no run, or without the workflow headers, instead of retrying them", async () => {
    const { flow, log } = checkout();
    await env.events.ensureWorkflow(flow);
    await using worker = await env.events.runWorkflow(flow);
    const subject = `workflow.${flow.name}.task.windshift.demo.v1.ChargeCard`;
    await env.events.publish(
      subject,
      ChargeCardSchema,
      { orderId: "ghost" },
      {
        headers: { "WS-Workflow-Run": "ghost", "WS-Workflow-Task": "1" },
      },
    );
    await env.events.publish(subject, ChargeCardSchema, { orderId: "bare" });
    await expectStats(worker, { rejected: 2, failed: 2, retried: 0 });
    expect(log.charged).toEqual([]);
  });

  it("fires a join once when its last two events are emitted at the same time by two workers", async () => {
    const runs = 10;
    const entered = new Map<string, number>();
    const bothIn = new Map<string, () => void>();
    const gates = new Map<string, Promise<void>>();
    const gate = (runId: string): Promise<void> => {
      let open = gates.get(runId);
      if (open === undefined) {
        open = new Promise<void>((resolve) => bothIn.set(runId, resolve));
        gates.set(runId, open);
      }
      const count = (entered.get(runId) ?? 0) + 1;
      entered.set(runId, count);
      if (count === 2) bothIn.get(runId)?.();
      return open;
    };
    // Both branches wait until the other is running too, then return together.
    const meet = (ctx: TaskContext) => gate(ctx.runId);
    const { flow, log } = checkout({ reserve: meet, receipt: meet });
    await env.events.ensureWorkflow(flow);
    const other = await env.client();
    await using _a = await env.events.runWorkflow(flow, {
      tasks: [ChargeCardSchema, ReserveStockSchema, ShipSchema],
      concurrency: runs,
    });
    await using _b = await other.runWorkflow(flow, { tasks: [SendReceiptSchema], concurrency: runs });
    const ids = await Promise.all(
      Array.from({ length: runs }, (_, i) =>
        env.events.startWorkflow(flow, ChargeCardSchema, { orderId: `o${i}` }).then((s) => s.runId),
      ),
    );
    for (const runId of ids) {
      const run = await runReaches(env, env.events, flow, runId, "completed");
      expect(run.tasks).toHaveLength(4);
    }
    expect(log.shipped.map((s) => s.orderId).sort()).toEqual(Array.from({ length: runs }, (_, i) => `o${i}`).sort());
  });

  it("says to call ensureWorkflow when a workflow was never set up", async () => {
    const { flow } = checkout();
    for (const call of [
      () => env.events.startWorkflow(flow, ChargeCardSchema, { orderId: "1" }),
      () => env.events.runWorkflow(flow),
      () => env.events.inspectWorkflow(flow, "r"),
      () => env.events.emitWorkflowEvent(flow, "r", "e"),
    ]) {
      const err = await windshiftError(call);
      expect(err.code).toBe(ErrorCode.NotFound);
      expect(err.message).toContain("call ensureWorkflow first");
    }
  });

  it("stops a worker when its signal is aborted, and refuses to start with an aborted one", async () => {
    const { flow } = checkout();
    await env.events.ensureWorkflow(flow);
    const controller = new AbortController();
    const worker = await env.events.runWorkflow(flow, { signal: controller.signal });
    controller.abort();
    expect(await worker.closed).toBeUndefined();
    const err = await windshiftError(env.events.runWorkflow(flow, { signal: AbortSignal.abort() }));
    expect(err.code).toBe(ErrorCode.Aborted);
  });

  it("refuses bad input with a validation error before anything is sent", async () => {
    const { flow } = checkout();
    const invalid = async (work: () => unknown) => {
      const err = await windshiftError(async () => work());
      expect(err.code).toBe(ErrorCode.Validation);
      return err.message;
    };
    expect(await invalid(() => workflow("bad name"))).toContain("is not a valid name");
    expect(await invalid(() => workflow("a".repeat(201)))).toContain("longer than 200");
    expect(await invalid(() => workflow("w").task(ShipSchema).task(ShipSchema))).toContain(
      "is already a task of workflow",
    );
    expect(await invalid(() => workflow("w").task({} as typeof ShipSchema))).toContain("is not a message schema");
    expect(await invalid(() => env.events.ensureWorkflow({} as never))).toContain("is not a workflow");
    expect(await invalid(() => env.events.ensureWorkflow(workflow("empty")))).toContain("has no tasks");
    expect(await invalid(() => env.events.ensureWorkflow(flow, { retainMs: 10 }))).toContain("retainMs");
    expect(await invalid(() => env.events.ensureWorkflow(flow, { retain: 1 } as never))).toContain(
      "options.retain: is not a known option",
    );
    expect(await invalid(() => env.events.startWorkflow(flow, TestEventSchema, { text: "x" }))).toContain(
      "windshift.test.v1.TestEvent is not a task of workflow",
    );
    expect(
      await invalid(() => env.events.startWorkflow(flow, ChargeCardSchema, { orderId: "1" }, { runId: "no spaces" })),
    ).toContain("is not a valid run id");
    expect(await invalid(() => env.events.runWorkflow(flow, { tasks: [TestEventSchema] }))).toContain(
      "tasks[0]: is not a task of workflow",
    );
    expect(await invalid(() => env.events.runWorkflow(workflow("w").task(ShipSchema)))).toContain(
      "has no task with a handler",
    );
    expect(await invalid(() => env.events.runWorkflow(flow, { maxAttempts: 0 }))).toContain("maxAttempts");
    expect(await invalid(() => env.events.runWorkflow(flow, { concurrency: 0 }))).toContain("concurrency");
    expect(await invalid(() => env.events.emitWorkflowEvent(flow, "run", "has space"))).toContain(
      "is not a valid event name",
    );
    expect(
      await invalid(() => env.events.emitWorkflowEvent(flow, "run", "e", undefined, { orderId: "x" } as never)),
    ).toContain("schema: is required when data is given");
  });

  it("refuses bad requests inside a handler with a validation error, and calls after it returned", async () => {
    const errors: string[] = [];
    let saved: TaskContext | undefined;
    const expectInvalid = (work: () => void) => {
      try {
        work();
        errors.push("no error");
      } catch (err) {
        errors.push(isWindshiftError(err, ErrorCode.Validation) ? err.message : String(err));
      }
    };
    const flow = workflow(uniqueName("requests")).task(ChargeCardSchema, (_charge, ctx) => {
      expectInvalid(() => ctx.join([], ShipSchema, {}));
      expectInvalid(() => ctx.join(["a", "a"], ChargeCardSchema, {}));
      expectInvalid(() => ctx.join(["a"], ShipSchema, {}));
      expectInvalid(() => ctx.emit("bad name"));
      expectInvalid(() => ctx.next(ChargeCardSchema, {}, { delayMs: -1 }));
      saved = ctx;
    });
    await env.events.ensureWorkflow(flow);
    await using _worker = await env.events.runWorkflow(flow);
    const { runId } = await env.events.startWorkflow(flow, ChargeCardSchema, { orderId: "v" });
    await runReaches(env, env.events, flow, runId, "completed");
    expect(errors).toEqual([
      "names: must be an array of 1-100 event names",
      "names: lists an event twice",
      `schema: windshift.demo.v1.Ship is not a task of workflow "${flow.name}"`,
      'name: "bad name" is not a valid event name (1-200 characters of A-Z, a-z, 0-9, _ . : -)',
      "delayMs: -1 is not a whole number of milliseconds between 0 and 9000000000000",
    ]);
    expectInvalid(() => saved?.emit("late"));
    expect(errors.at(-1)).toBe("emit: called after the handler of task 1 returned; call it before returning");
  });
});
