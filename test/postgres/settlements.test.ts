/**
 * The settlement queue of a PostgreSQL consumer: a settlement queued the
 * moment the previous batch is confirmed (in that confirmation's first
 * reaction, before the drain has wound up) is sent all the same; none is
 * left waiting in the queue for a settlement that never comes.
 */
import { describe, expect, it } from "vitest";
import type { SettleKind } from "../../src/engines/engine.js";
import { createAppender } from "../../src/engines/postgres/append.js";
import { consumerState, ensureConsumer } from "../../src/engines/postgres/consumers.js";
import { claim } from "../../src/engines/postgres/deliveries.js";
import { SettlementQueue } from "../../src/engines/postgres/settlements.js";
import { silentLogger } from "../../src/internal/logger.js";
import { resolveConsumerConfig } from "../../src/streams/consumers.js";
import { APPEND, outgoing, uniqueStream, usePostgres } from "./harness.js";

const env = usePostgres();

/** `promise`, or a rejection naming `what` after `ms`. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took more than ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

describe("confirmed settlements", () => {
  it("an ack confirmed from the previous ack's confirmation is sent, not left in the queue", async () => {
    const stream = uniqueStream();
    await env.stream(stream, { subjects: [`${stream}.>`] });
    const appender = createAppender(env.pool, { schema: env.schema });
    for (let i = 0; i < 3; i++) await appender.append(outgoing(`${stream}.e`), APPEND);
    await ensureConsumer(
      env.pool,
      env.schema,
      stream,
      resolveConsumerConfig(stream, { name: "w", from: { start: true } }),
    );
    expect(await claim(env.pool, env.schema, stream, "w", 3)).toHaveLength(3);
    const applied: SettleKind[][] = [];
    const queue = new SettlementQueue(
      {
        db: env.pool,
        schema: env.schema,
        logger: silentLogger,
        isClosed: () => false,
        applied: (_s, _c, batch) => applied.push(batch.map((b) => b.kind)),
      },
      stream,
      "w",
    );
    // Each next ack is queued in the first reaction to the one before it.
    const third = await within(
      queue.confirm(1, "ack", 0).then(() => queue.confirm(2, "ack", 0).then(() => queue.confirm(3, "ack", 0))),
      5_000,
      "the chained acks",
    );
    expect(third).toBeUndefined();
    expect(applied).toEqual([["ack"], ["ack"], ["ack"]]);
    expect(queue.idle).toBe(true);
    expect(await consumerState(env.pool, env.schema, stream, "w")).toMatchObject({ ackFloor: 3, unsettled: 0 });
  });
});
