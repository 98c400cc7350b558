/**
 * A workflow: a checkout as typed tasks, with a fork and a join.
 *
 * ChargeCard forks ReserveStock and SendReceipt (the receipt half a second
 * later) and declares a join: Ship runs once both "stock-reserved" and
 * "receipt-sent" have been emitted, in whatever order they come. Ship reads
 * the data of "stock-reserved". The run's state lives in a key-value bucket;
 * `inspectWorkflow` reads it, and `toMermaid` draws it.
 *
 * Where it runs: with `NATS_URL`, on that server; without it, on a
 * throwaway nats-server (free port, temporary store) when the binary is
 * installed; otherwise on the in-memory engine, the same API without a server.
 *
 * Run it with `npm run example:workflow`. Against a server of your own, a
 * second run finds run "order-1" there already: starting it again starts
 * nothing new, and the example prints the run as it stands.
 */
import { connect } from "@nats-io/transport-node";
import { createEvents, type Events, toMermaid, type WorkflowRun, workflow } from "windshift";
import { createMemoryEvents, findNatsServer, type NatsServer, startNatsServer } from "windshift/testing";
import {
  ChargeCardSchema,
  ReserveStockSchema,
  SendReceiptSchema,
  ShipSchema,
  StockReservedSchema,
} from "../gen/windshift/demo/v1/checkout_pb.js";

const DEADLINE_MS = 15_000;

// Every service that starts, runs or inspects the workflow declares it the same way.
const checkout = workflow("checkout")
  .task(ChargeCardSchema, (charge, ctx) => {
    console.log(`  ◂ task ${ctx.taskId} ChargeCard: charged ${charge.amount} for ${charge.orderId}`);
    ctx.next(ReserveStockSchema, { orderId: charge.orderId });
    ctx.next(SendReceiptSchema, { orderId: charge.orderId }, { delayMs: 500 });
    ctx.join(["stock-reserved", "receipt-sent"], ShipSchema, { orderId: charge.orderId });
  })
  .task(ReserveStockSchema, (reserve, ctx) => {
    console.log(`  ◂ task ${ctx.taskId} ReserveStock: reserved the kettle for ${reserve.orderId}`);
    ctx.emit("stock-reserved", StockReservedSchema, { orderId: reserve.orderId, sku: "kettle", quantity: 1 });
  })
  .task(SendReceiptSchema, (receipt, ctx) => {
    console.log(`  ◂ task ${ctx.taskId} SendReceipt: emailed the receipt for ${receipt.orderId}`);
    ctx.emit("receipt-sent");
  })
  .task(ShipSchema, (ship, ctx) => {
    const stock = ctx.events.get("stock-reserved", StockReservedSchema);
    console.log(
      `  ◂ task ${ctx.taskId} Ship: shipped ${stock?.quantity} × ${stock?.sku} for ${ship.orderId} ` +
        `(joined on ${ctx.events.names.join(", ")})`,
    );
  });

/** The client, where it runs, and how to close it. */
interface Target {
  readonly events: Events;
  readonly where: string;
  close(): Promise<void>;
}

async function openTarget(): Promise<Target> {
  let url = process.env.NATS_URL || undefined;
  let server: NatsServer | undefined;
  if (url === undefined) {
    let binary: string;
    try {
      binary = findNatsServer();
    } catch {
      const events = createMemoryEvents();
      return {
        events,
        where: "on the in-memory engine (no NATS_URL, no nats-server binary)",
        close: () => events.close(),
      };
    }
    server = await startNatsServer({ binary });
    url = server.url;
  }
  const nc = await connect({ servers: url }).catch(async (err: unknown) => {
    await server?.stop();
    throw err;
  });
  return {
    events: createEvents(nc),
    where: `on NATS JetStream at ${url}${server === undefined ? "" : " (own nats-server, temporary store)"}`,
    async close() {
      await nc.close();
      await server?.stop();
    },
  };
}

/** Polls the run until it has finished, failing after DEADLINE_MS. */
async function finished(events: Events, runId: string): Promise<WorkflowRun> {
  const deadline = Date.now() + DEADLINE_MS;
  for (;;) {
    const run = await events.inspectWorkflow(checkout, runId);
    if (run.status !== "running") return run;
    if (Date.now() > deadline) throw new Error(`run ${runId} still running after ${DEADLINE_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function main(): Promise<void> {
  const target = await openTarget();
  console.log(`windshift workflow example ${target.where}`);
  try {
    const { events } = target;
    // The stream of task events, a consumer per task type, the bucket of runs.
    const { stream, bucket } = await events.ensureWorkflow(checkout);
    console.log(`▸ workflow "${checkout.name}": stream ${stream}, bucket ${bucket}`);

    // The worker runs every task type with a handler; leaving the block closes it.
    await using worker = await events.runWorkflow(checkout, { concurrency: 8 });
    console.log(`▸ worker running ${worker.tasks.length} task types, 8 handlers at most at once`);
    const { runId, duplicate } = await events.startWorkflow(
      checkout,
      ChargeCardSchema,
      { orderId: "order-1", amount: 3_499n },
      { runId: "order-1" },
    );
    console.log(`▸ ${duplicate ? "run order-1 exists already: nothing new started" : `started run ${runId}`}`);

    const run = await finished(events, runId);
    console.log(`▸ run ${run.runId} ${run.status}${run.error === undefined ? "" : `: ${run.error}`}`);
    console.log(toMermaid(run));
    if (run.status !== "completed") process.exitCode = 1;
  } finally {
    await target.close();
  }
}

main().then(
  () => console.log("done"),
  (err: unknown) => {
    console.error("workflow example failed:", err);
    process.exitCode = 1;
  },
);
