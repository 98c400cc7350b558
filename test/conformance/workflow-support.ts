/**
 * The checkout workflow of the issue, built per test with a fresh name, and
 * what the workflow tests check with it.
 */
import {
  ChargeCardSchema,
  ReserveStockSchema,
  SendReceiptSchema,
  ShipSchema,
  StockReservedSchema,
} from "../../gen/windshift/demo/v1/checkout_pb.js";
import { type Events, type TaskContext, type Workflow, workflow } from "../../src/index.js";
import { nextOf, uniqueName } from "./harness.js";

/** What the checkout tasks saw, per run. */
export interface CheckoutLog {
  readonly charged: string[];
  readonly reserved: string[];
  readonly receipts: string[];
  /** Per shipped order: the skus of the stock-reserved event and the names of the events that fired the join. */
  readonly shipped: { orderId: string; sku: string | undefined; names: readonly string[] }[];
}

/** Hooks a test may put into the checkout tasks. */
export interface CheckoutHooks {
  readonly charge?: (ctx: TaskContext) => unknown;
  readonly reserve?: (ctx: TaskContext) => unknown;
  readonly receipt?: (ctx: TaskContext) => unknown;
  /** The receipt's delay. */
  readonly receiptDelayMs?: number;
}

/**
 * charge → fork (reserve stock, send receipt) → join on "stock-reserved" and
 * "receipt-sent" → ship.
 */
export function checkout(
  hooks: CheckoutHooks = {},
  name = uniqueName("checkout"),
): { flow: Workflow; log: CheckoutLog } {
  const log: CheckoutLog = { charged: [], reserved: [], receipts: [], shipped: [] };
  const flow = workflow(name)
    .task(ChargeCardSchema, async (charge, ctx) => {
      log.charged.push(charge.orderId);
      ctx.next(ReserveStockSchema, { orderId: charge.orderId });
      ctx.next(
        SendReceiptSchema,
        { orderId: charge.orderId },
        hooks.receiptDelayMs === undefined ? undefined : { delayMs: hooks.receiptDelayMs },
      );
      ctx.join(["stock-reserved", "receipt-sent"], ShipSchema, { orderId: charge.orderId });
      await hooks.charge?.(ctx);
    })
    .task(ReserveStockSchema, async (reserve, ctx) => {
      await hooks.reserve?.(ctx);
      log.reserved.push(reserve.orderId);
      ctx.emit("stock-reserved", StockReservedSchema, { orderId: reserve.orderId, sku: `sku-${reserve.orderId}` });
    })
    .task(SendReceiptSchema, async (receipt, ctx) => {
      await hooks.receipt?.(ctx);
      log.receipts.push(receipt.orderId);
      ctx.emit("receipt-sent");
    })
    .task(ShipSchema, async (ship, ctx) => {
      log.shipped.push({
        orderId: ship.orderId,
        sku: ctx.events.get("stock-reserved", StockReservedSchema)?.sku,
        names: ctx.events.names,
      });
    });
  return { flow, log };
}

/** Waits until run `runId` has `status`, and returns it. */
export function runReaches(
  env: {
    eventually<T>(
      check: () => Promise<T | undefined | false>,
      options?: { what?: string; timeoutMs?: number },
    ): Promise<T>;
  },
  events: Events,
  flow: Workflow,
  runId: string,
  status: "completed" | "failed",
) {
  return env.eventually(
    async () => {
      const run = await events.inspectWorkflow(flow, runId);
      return run.status === status ? run : undefined;
    },
    { what: `run ${runId} ${status}`, timeoutMs: 30_000 },
  );
}

/**
 * How many task events the workflow's stream holds, per task id of `runId`:
 * all of them are read through a fresh consumer from the start.
 */
export async function storedTasks(
  env: { progress(stream: string, consumer: string): Promise<{ pending: number }> },
  events: Events,
  flow: Workflow,
  runId: string,
): Promise<Map<string, number>> {
  const stream = `WORKFLOW_${flow.name}`;
  const consumer = await events.ensureConsumer(stream, { from: { start: true }, inactiveThresholdMs: 60_000 });
  const { pending } = await env.progress(stream, consumer.name);
  const counts = new Map<string, number>();
  await using sub = await events.subscribe(stream, consumer.name, { confirmAcks: false });
  const it = sub[Symbol.asyncIterator]();
  for (let i = 0; i < pending; i++) {
    const event = await nextOf(it);
    await event.ack();
    if (event.headers.get("WS-Workflow-Run") !== runId) continue;
    const task = event.headers.get("WS-Workflow-Task") ?? "?";
    counts.set(task, (counts.get(task) ?? 0) + 1);
  }
  return counts;
}
