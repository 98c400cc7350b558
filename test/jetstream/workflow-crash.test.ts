/**
 * Exactly-once scheduling when a worker dies. The first task of a checkout
 * run is taken by a worker in a child process, which is killed at a chosen
 * point after its commit; a worker in this process then finishes the run.
 * Also: the requests of attempts that threw are dropped, told apart from
 * those of the attempt that returned by their data (the conformance suite
 * checks the counts; this checks which attempt's next tasks, join and event
 * data were committed).
 */
import type { ChildProcess } from "node:child_process";
import { rm, writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ChargeCardSchema,
  ReserveStockSchema,
  SendReceiptSchema,
  ShipSchema,
  StockReservedSchema,
} from "../../gen/windshift/demo/v1/checkout_pb.js";
import { type Events, type Workflow, workflow } from "../../src/index.js";
import { type Child, compileSources, root, startNode } from "../child.js";
import { checkout, storedTasks } from "../conformance/workflow-support.js";
import { consumerState, uniqueName, useServer, waitFor } from "../helpers.js";

const env = useServer();

/** How many task events the workflow's stream holds per task id of `runId`. */
async function stored(flow: Workflow, runId: string): Promise<Record<string, number>> {
  const progress = async (stream: string, consumer: string) => ({
    pending: (await consumerState(env.nc, stream, consumer)).pending,
  });
  return Object.fromEntries(await storedTasks({ progress }, env.events, flow, runId));
}

/** Waits until run `runId` is completed, and returns it. */
function completed(events: Events, flow: Workflow, runId: string) {
  return waitFor(
    async () => {
      const run = await events.inspectWorkflow(flow, runId);
      return run.status === "completed" ? run : undefined;
    },
    { timeoutMs: 10_000, what: `run ${runId} completed` },
  );
}

/**
 * The worker of the child process: it runs the checkout's first task only
 * (the same requests as `checkout()`), prints `charged` from its handler, and
 * freezes at `halt`, the first moment after its commit that it would talk to
 * the server about the task: publishing the next tasks (`publish`) or acking
 * the task (`ack`). From then on it sends nothing, as a process that hangs
 * there, and prints `halted` so that the test kills it.
 */
const workerProgram = `
import { connect } from "@nats-io/transport-node";
import { createEvents, workflow } from "./src/index.js";
import {
  ChargeCardSchema,
  ReserveStockSchema,
  SendReceiptSchema,
  ShipSchema,
} from "./gen/windshift/demo/v1/checkout_pb.js";

const [url, name, halt] = process.argv.slice(2);
const nc = await connect({ servers: url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
const send = nc.publish.bind(nc);
const text = new TextDecoder();
let halted = false;
nc.publish = (subject, payload, options) => {
  if (halted) return;
  const scheduling = subject.startsWith("workflow." + name + ".task.");
  const acking =
    subject.startsWith("$JS.ACK.WORKFLOW_" + name + ".") && payload !== undefined && text.decode(payload) === "+ACK";
  if ((halt === "publish" && scheduling) || (halt === "ack" && acking)) {
    halted = true;
    process.stdout.write("halted " + subject + "\\n");
    return;
  }
  send(subject, payload, options);
};
const flow = workflow(name)
  .task(ChargeCardSchema, (charge, ctx) => {
    process.stdout.write("charged " + ctx.runId + " " + ctx.taskId + " " + ctx.attempt + "\\n");
    ctx.next(ReserveStockSchema, { orderId: charge.orderId });
    ctx.next(SendReceiptSchema, { orderId: charge.orderId });
    ctx.join(["stock-reserved", "receipt-sent"], ShipSchema, { orderId: charge.orderId });
  })
  .task(ReserveStockSchema)
  .task(SendReceiptSchema)
  .task(ShipSchema);
await createEvents(nc).runWorkflow(flow, { tasks: [ChargeCardSchema] });
process.stdout.write("ready\\n");
`;

/**
 * A directory the child runs in: the sources its program imports, compiled
 * to JavaScript (laid out as in the repository), and its program.
 */
async function workerDir(): Promise<string> {
  const dir = await compileSources(
    "windshift-crash-",
    ["src/index.ts", "gen/windshift/demo/v1/checkout_pb.ts"],
    (file) => relative(root, file),
  );
  await writeFile(join(dir, "worker.mjs"), workerProgram);
  return dir;
}

function startWorker(dir: string, name: string, halt: "publish" | "ack"): Child {
  const child = startNode(["worker.mjs", env.server.url, name, halt], { cwd: dir });
  children.push(child.proc);
  return child;
}

let dir: string | undefined;
const children: ChildProcess[] = [];

beforeAll(async () => {
  dir = await workerDir();
});

afterAll(async () => {
  for (const proc of children) if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe("workflows: a worker killed after its commit", () => {
  // Before `publish`, the next tasks exist only in the run's state; before
  // `ack`, they are in the stream too, and are published again (under their
  // idempotency keys) when the first task is delivered again.
  it.each([
    ["publish", { "1": 1 }],
    ["ack", { "1": 1, "2": 1, "3": 1 }],
  ] as const)(
    "killed before its %s: the task does not run again, its next tasks are scheduled once",
    async (halt, inStream) => {
      const { flow, log } = checkout({}, uniqueName("crash"));
      // A dead worker's task is delivered again after 1 s.
      await env.events.ensureWorkflow(flow, { processingTimeoutMs: 1_000 });
      const runId = `order-${halt}`;
      await env.events.startWorkflow(flow, ChargeCardSchema, { orderId: halt, amount: 5n }, { runId });

      const child = startWorker(dir as string, flow.name, halt);
      await waitFor(() => child.lines.some((l) => l.startsWith("halted ")) || child.proc.exitCode !== null, {
        what: "the child worker to halt after its commit",
      });
      expect(child.proc.exitCode, `the child worker exited: ${child.stderr()}`).toBeNull();
      const atHalt = await env.events.inspectWorkflow(flow, runId);
      expect(atHalt.tasks.map((t) => [t.id, t.status, t.attempts])).toEqual([
        ["1", "completed", 1],
        ["2", "scheduled", 0],
        ["3", "scheduled", 0],
      ]);
      expect(atHalt.joins[0]).toMatchObject({ declaredBy: "1", status: "waiting" });
      child.proc.kill("SIGKILL");
      expect(await child.exited).toBe("SIGKILL");
      expect(child.lines.filter((l) => l.startsWith("charged "))).toEqual([`charged ${runId} 1 1`]);
      expect(await stored(flow, runId)).toEqual(inStream);

      // The first task comes back here, finished: only its next tasks are
      // published (again), and the task is acked without running its handler.
      {
        await using charging = await env.events.runWorkflow(flow, { tasks: [ChargeCardSchema] });
        await waitFor(() => charging.stats.acked === 1, { what: "the first task delivered again and acked" });
        expect(charging.stats).toMatchObject({ acked: 1, failed: 0 });
      }
      expect(log.charged).toEqual([]);
      expect(await stored(flow, runId)).toEqual({ "1": 1, "2": 1, "3": 1 });

      await using rest = await env.events.runWorkflow(flow, {
        tasks: [ReserveStockSchema, SendReceiptSchema, ShipSchema],
        concurrency: 2,
      });
      const run = await completed(env.events, flow, runId);
      expect(run.tasks.map((t) => [t.id, t.type.split(".").pop(), t.status, t.attempts])).toEqual([
        ["1", "ChargeCard", "completed", 1],
        ["2", "ReserveStock", "completed", 1],
        ["3", "SendReceipt", "completed", 1],
        ["4", "Ship", "completed", 1],
      ]);
      expect(log.charged).toEqual([]);
      expect(log.reserved).toEqual([halt]);
      expect(log.receipts).toEqual([halt]);
      expect(log.shipped).toEqual([{ orderId: halt, sku: `sku-${halt}`, names: ["stock-reserved", "receipt-sent"] }]);
      expect(await stored(flow, runId)).toEqual({ "1": 1, "2": 1, "3": 1, "4": 1 });
      await waitFor(() => rest.stats.acked === 3, { what: "the other three tasks acked" });
    },
  );
});

describe("workflows: a handler that throws after asking for what comes next", () => {
  it("commits only the requests of the attempt that returned: next tasks, joins and events of failed attempts are dropped", async () => {
    const seen = { charge: [] as number[], reserve: [] as string[], receipt: [] as string[], ship: [] as string[] };
    const flow = workflow(uniqueName("throws"))
      .task(ChargeCardSchema, (charge, ctx) => {
        seen.charge.push(ctx.attempt);
        // Each attempt asks for tasks with its own data, to tell them apart.
        const orderId = `${charge.orderId}@${ctx.attempt}`;
        ctx.next(ReserveStockSchema, { orderId });
        ctx.next(SendReceiptSchema, { orderId });
        ctx.join(["stock-reserved", "receipt-sent"], ShipSchema, { orderId });
        if (ctx.attempt === 1) throw new Error("card service unavailable");
      })
      .task(ReserveStockSchema, (reserve, ctx) => {
        seen.reserve.push(`${reserve.orderId}#${ctx.attempt}`);
        ctx.emit("stock-reserved", StockReservedSchema, { orderId: reserve.orderId, sku: `attempt-${ctx.attempt}` });
        if (ctx.attempt === 1) throw new Error("stock service unavailable");
      })
      .task(SendReceiptSchema, (receipt, ctx) => {
        seen.receipt.push(`${receipt.orderId}#${ctx.attempt}`);
        ctx.emit("receipt-sent");
      })
      .task(ShipSchema, (ship, ctx) => {
        seen.ship.push(`${ship.orderId}:${ctx.events.get("stock-reserved", StockReservedSchema)?.sku}`);
      });
    await env.events.ensureWorkflow(flow);
    await using worker = await env.events.runWorkflow(flow, {
      concurrency: 2,
      backoff: { initialDelayMs: 50, maxDelayMs: 50 },
    });
    const { runId } = await env.events.startWorkflow(flow, ChargeCardSchema, { orderId: "t" });
    const run = await completed(env.events, flow, runId);

    expect(seen).toEqual({ charge: [1, 2], reserve: ["t@2#1", "t@2#2"], receipt: ["t@2#1"], ship: ["t@2:attempt-2"] });
    expect(run.tasks.map((t) => [t.id, t.type.split(".").pop(), t.parent, t.status, t.attempts, t.error])).toEqual([
      ["1", "ChargeCard", undefined, "completed", 2, undefined],
      ["2", "ReserveStock", "1", "completed", 2, undefined],
      ["3", "SendReceipt", "1", "completed", 1, undefined],
      ["4", "Ship", undefined, "completed", 1, undefined],
    ]);
    expect(run.joins).toHaveLength(1);
    expect(run.events.map((e) => [e.name, e.emittedBy]).sort()).toEqual([
      ["receipt-sent", "3"],
      ["stock-reserved", "2"],
    ]);
    expect(await stored(flow, runId)).toEqual({ "1": 1, "2": 1, "3": 1, "4": 1 });
    await waitFor(() => worker.stats.acked === 4, { what: "four tasks acked" });
    expect(worker.stats).toMatchObject({ acked: 4, failed: 2, retried: 2, rejected: 0 });
  });
});
