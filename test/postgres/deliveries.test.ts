/**
 * Claims and settlements: competing claimers never share an event, acks
 * move the ack floor, a lapsed processing timeout redelivers with the next
 * attempt, a nak's delay holds an event back, term and maxDeliveryAttempts
 * stop redelivery, progress renews the lease, maxUnsettledEvents caps what
 * is out, and a claimer never sees an id before the ids below it.
 */
import { describe, expect, it } from "vitest";
import type { SettleKind } from "../../src/engines/engine.js";
import { createAppender } from "../../src/engines/postgres/append.js";
import { consumerState, deleteConsumer, ensureConsumer } from "../../src/engines/postgres/consumers.js";
import { type Claimed, claim, settle } from "../../src/engines/postgres/deliveries.js";
import { ErrorCode, type WindshiftError } from "../../src/errors.js";
import { type ConsumerOptions, resolveConsumerConfig } from "../../src/streams/consumers.js";
import { holdFor, waitFor } from "../helpers.js";
import { APPEND, outgoing, uniqueStream, usePostgres } from "./harness.js";

const env = usePostgres();

/** A stream capturing `<name>.>` with `events` events and consumer "w" from its start. */
async function setUp(events: number, options: ConsumerOptions = {}) {
  const stream = uniqueStream();
  await env.stream(stream, { subjects: [`${stream}.>`] });
  const appender = createAppender(env.pool, { schema: env.schema });
  for (let i = 0; i < events; i++) await appender.append(outgoing(`${stream}.e`), APPEND);
  const config = resolveConsumerConfig(stream, { name: "w", from: { start: true }, ...options });
  await ensureConsumer(env.pool, env.schema, stream, config);
  return {
    stream,
    appender,
    claim: (max: number, db = env.pool) => claim(db, env.schema, stream, "w", max),
    settle: (id: number, kind: SettleKind, delayMs?: number) =>
      settle(env.pool, env.schema, stream, "w", id, kind, delayMs),
    state: () => consumerState(env.pool, env.schema, stream, "w"),
  };
}

const attempts = (claimed: Claimed[]) => claimed.map((d) => [d.id, d.deliveryAttempt]);

describe("competing claimers", () => {
  it("two claimers on their own sessions never get the same event, and together get each once", async () => {
    const total = 300;
    const c = await setUp(0, { maxUnsettledEvents: 10_000 });
    const sessions = [env.createPool({ max: 1 }), env.createPool({ max: 1 })];
    const seen: number[][] = [[], []];
    const appending = (async () => {
      for (let i = 0; i < total; i++) await c.appender.append(outgoing(`${c.stream}.e`), APPEND);
    })();
    const deadline = Date.now() + 20_000;
    await Promise.all(
      sessions.map(async (session, i) => {
        while (seen[0]!.length + seen[1]!.length < total && Date.now() < deadline) {
          const got = await c.claim(7, session);
          seen[i]!.push(...got.map((d) => d.id));
          for (const d of got) expect(d.deliveryAttempt).toBe(1);
        }
      }),
    );
    await appending;
    const all = [...seen[0]!, ...seen[1]!].sort((a, b) => a - b);
    expect(all).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    expect(seen[0]!.length).toBeGreaterThan(0);
    expect(seen[1]!.length).toBeGreaterThan(0);
  });

  it("redeliveries due at once are split between claimers too (SKIP LOCKED)", async () => {
    const c = await setUp(60, { processingTimeoutMs: 400 });
    expect(await c.claim(60)).toHaveLength(60);
    const sessions = [env.createPool({ max: 1 }), env.createPool({ max: 1 })];
    // Each claim as "id:attempt": a lease lapsing again under a slow run adds attempt 3s, never a repeat.
    const claims: string[] = [];
    await waitFor(
      async () => {
        const got = await Promise.all(sessions.map((s) => c.claim(10, s)));
        claims.push(...got.flat().map((d) => `${d.id}:${d.deliveryAttempt}`));
        return claims.filter((k) => k.endsWith(":2")).length >= 60;
      },
      { what: "60 redeliveries" },
    );
    expect(new Set(claims).size).toBe(claims.length);
    const seconds = claims.filter((k) => k.endsWith(":2")).map((k) => Number(k.split(":")[0]));
    expect(seconds.sort((x, y) => x - y)).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
  });
});

describe("deleting under claimers", () => {
  it("a consumer deleted while two sessions claim it: the delete succeeds, both claimers end with NOT_FOUND", async () => {
    const c = await setUp(200, { processingTimeoutMs: 30 });
    const sessions = [env.createPool({ max: 1 }), env.createPool({ max: 1 })];
    let claimed = 0;
    const loops = sessions.map(async (session) => {
      for (;;) {
        try {
          claimed += (await c.claim(20, session)).length;
        } catch (err) {
          return (err as WindshiftError).code;
        }
      }
    });
    await waitFor(() => claimed >= 300, { what: "redeliveries under way" });
    await deleteConsumer(env.pool, env.schema, c.stream, "w");
    expect(await Promise.all(loops)).toEqual([ErrorCode.NotFound, ErrorCode.NotFound]);
  });
});

describe("settlement", () => {
  it("acks move the ack floor up to the lowest unsettled event", async () => {
    const c = await setUp(4);
    expect((await c.claim(3)).map((d) => d.id)).toEqual([1, 2, 3]);
    expect(await c.state()).toMatchObject({ ackFloor: 0, unsettled: 3, pending: 1, lastDeliveredId: 3 });
    expect(await c.settle(2, "ack")).toBe(true);
    expect(await c.state()).toMatchObject({ ackFloor: 0, unsettled: 2 });
    expect(await c.settle(1, "ack")).toBe(true);
    expect(await c.state()).toMatchObject({ ackFloor: 2, unsettled: 1 });
    expect(await c.settle(3, "ack")).toBe(true);
    expect(await c.state()).toMatchObject({ ackFloor: 3, unsettled: 0, redelivered: 0 });
    expect(await c.settle(3, "ack")).toBe(false);
  });

  it("a lapsed processing timeout redelivers the event with attempt 2", async () => {
    const c = await setUp(1, { processingTimeoutMs: 1_000 });
    const started = Date.now();
    expect(attempts(await c.claim(5))).toEqual([[1, 1]]);
    expect(await c.claim(5)).toEqual([]);
    const again = await waitFor(async () => {
      const got = await c.claim(5);
      return got.length > 0 && got;
    });
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_000);
    expect(attempts(again)).toEqual([[1, 2]]);
    expect(again[0]?.payload).toEqual(new TextEncoder().encode(`payload of ${c.stream}.e`));
    expect(await c.state()).toMatchObject({ unsettled: 1, redelivered: 1 });
  });

  it("a nak with a delay is not due before its time; a nak without one is due at once", async () => {
    const c = await setUp(2, { processingTimeoutMs: 60_000 });
    await c.claim(2);
    const naked = Date.now();
    expect(await c.settle(1, "nak", 1_000)).toBe(true);
    expect(await c.settle(2, "nak")).toBe(true);
    expect(attempts(await c.claim(5))).toEqual([[2, 2]]);
    const later = await waitFor(async () => {
      const got = await c.claim(5);
      return got.length > 0 && got;
    });
    expect(Date.now() - naked).toBeGreaterThanOrEqual(1_000);
    expect(attempts(later)).toEqual([[1, 2]]);
  });

  it("a termed event is never redelivered", async () => {
    const c = await setUp(2, { processingTimeoutMs: 150 });
    await c.claim(2);
    expect(await c.settle(1, "term")).toBe(true);
    // The time passing is the condition: well past the processing timeout, only event 2 came back.
    await holdFor(450);
    expect(attempts(await c.claim(5))).toEqual([[2, 2]]);
    expect(await c.settle(1, "ack")).toBe(false);
    expect(await c.state()).toMatchObject({ unsettled: 1, ackFloor: 1 });
  });

  it("maxDeliveryAttempts stops redelivery, after a timeout or a nak", async () => {
    const c = await setUp(2, { processingTimeoutMs: 150, maxDeliveryAttempts: 2 });
    expect(attempts(await c.claim(5))).toEqual([
      [1, 1],
      [2, 1],
    ]);
    const second = await waitFor(async () => {
      const got = await c.claim(5);
      return got.length === 2 && got;
    });
    expect(attempts(second)).toEqual([
      [1, 2],
      [2, 2],
    ]);
    // A nak on the last attempt settles the event: due at once, yet never claimed again.
    expect(await c.settle(2, "nak")).toBe(true);
    expect(await c.claim(5)).toEqual([]);
    // Event 1's second lease lapses: it counts as settled, and no claim brings it back.
    await waitFor(async () => (await c.state()).unsettled === 0, { what: "event 1 given up on" });
    expect(await c.state()).toMatchObject({ ackFloor: 2, pending: 0 });
    await holdFor(300);
    expect(await c.claim(5)).toEqual([]);
    expect(await c.state()).toMatchObject({ unsettled: 0, ackFloor: 2 });
  });

  it("progress renews the lease; without it the event is redelivered", async () => {
    const c = await setUp(1, { processingTimeoutMs: 1_000 });
    await c.claim(1);
    const until = Date.now() + 2_000;
    while (Date.now() < until) {
      expect(await c.settle(1, "progress")).toBe(true);
      expect(await c.claim(1)).toEqual([]);
      // The time passing is the condition: each ping comes well within the 1 s lease.
      await holdFor(100);
    }
    const again = await waitFor(async () => {
      const got = await c.claim(1);
      return got.length > 0 && got;
    });
    expect(attempts(again)).toEqual([[1, 2]]);
  });

  it("maxUnsettledEvents caps what is out; a settlement makes room", async () => {
    const c = await setUp(5, { maxUnsettledEvents: 2 });
    expect((await c.claim(10)).map((d) => d.id)).toEqual([1, 2]);
    expect(await c.claim(10)).toEqual([]);
    await c.settle(1, "ack");
    expect((await c.claim(10)).map((d) => d.id)).toEqual([3]);
    expect(await c.state()).toMatchObject({ pending: 2, unsettled: 2, lastDeliveredId: 3 });
  });
});

describe("ids committed late", () => {
  it("a claimer does not see id N+1 while id N is uncommitted, then gets both in order", async () => {
    const c = await setUp(1);
    expect((await c.claim(5)).map((d) => d.id)).toEqual([1]);
    const holder = await env.pool.connect();
    try {
      await holder.query("BEGIN");
      // Id 2, held uncommitted; the next append waits for the stream's lock and will be id 3.
      const held = await createAppender(holder, { schema: env.schema }).append(outgoing(`${c.stream}.e`), APPEND);
      expect(held.id).toBe(2);
      const waiting = c.appender.append(outgoing(`${c.stream}.e`), APPEND);
      expect(await c.claim(5)).toEqual([]);
      expect(await c.state()).toMatchObject({ lastDeliveredId: 1, pending: 0 });
      await holder.query("COMMIT");
      expect((await waiting).id).toBe(3);
    } finally {
      holder.release();
    }
    expect((await c.claim(5)).map((d) => d.id)).toEqual([2, 3]);
  });

  it("with 8 racing appenders, every claim continues exactly where the last one ended", async () => {
    const total = 400;
    const c = await setUp(0, { maxUnsettledEvents: 10_000 });
    const appenders = Array.from({ length: 8 }, () =>
      createAppender(env.createPool({ max: 1 }), { schema: env.schema }),
    );
    const appending = Promise.all(
      appenders.map(async (a) => {
        for (let i = 0; i < total / 8; i++) await a.append(outgoing(`${c.stream}.e`), APPEND);
      }),
    );
    const claimed: number[] = [];
    await waitFor(
      async () => {
        for (const d of await c.claim(13)) {
          expect(d.id).toBe(claimed.length + 1);
          claimed.push(d.id);
        }
        return claimed.length === total;
      },
      { intervalMs: 1, what: `${total} events claimed` },
    );
    await appending;
  });
});
