/**
 * Publishing inside the caller's transaction (`publish(..., { transaction })`)
 * on the PostgreSQL engine: the event is stored if and only if the
 * transaction commits, subscribers see it only after the commit, and a
 * rolled-back event gives its id back. Engines without transactions, and a
 * transaction with retries, are refused before anything is sent.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestEventSchema } from "../../gen/windshift/test/v1/events_pb.js";
import { ErrorCode, type Events } from "../../src/index.js";
import { createPostgresEvents } from "../../src/postgres/index.js";
import { createMemoryEvents } from "../../src/testing/index.js";
import { nextEvent, windshiftError } from "../helpers.js";
import { uniqueStream, usePostgres } from "./harness.js";

const env = usePostgres();
let events: Events;

beforeAll(() => {
  events = createPostgresEvents({ pool: env.pool, schema: env.schema, migrate: false });
});
afterAll(() => events.close());

describe("publish in a transaction", () => {
  it("stores the event with the transaction's commit, and wakes subscribers only then", async () => {
    const s = uniqueStream();
    await events.ensureStream(s, { subjects: [`${s}.>`] });
    await events.ensureConsumer(s, { name: "reader", from: { start: true } });
    await using sub = await events.subscribe(s, "reader", { schema: TestEventSchema });
    const it = sub[Symbol.asyncIterator]();
    const next = it.next();
    let arrived = false;
    void next.then(() => {
      arrived = true;
    });

    const client = await env.pool.connect();
    try {
      await client.query("BEGIN");
      await client.query("CREATE TEMP TABLE business (n int) ON COMMIT DROP");
      const published = await events.publish(
        `${s}.a`,
        TestEventSchema,
        { text: "with the change" },
        { transaction: client },
      );
      expect(published).toEqual({ id: 1, stream: s, duplicate: false });
      // Not visible outside the transaction before it commits.
      const outside = await env.pool.query(`SELECT count(*)::int AS n FROM "${env.schema}".events`);
      expect(outside.rows[0].n).toBe(0);
      expect((await events.streamInfo(s)).state.events).toBe(0);
      expect(arrived).toBe(false);
      await client.query("COMMIT");
    } finally {
      client.release();
    }
    const event = (await next).value;
    expect(event?.data.text).toBe("with the change");
    await event?.ack();
    expect((await events.streamInfo(s)).state.events).toBe(1);
  });

  it("stores nothing when the transaction rolls back, and the next event takes the id", async () => {
    const s = uniqueStream();
    await events.ensureStream(s, { subjects: [`${s}.>`] });
    const client = await env.pool.connect();
    try {
      await client.query("BEGIN");
      const rolledBack = await events.publish(`${s}.a`, TestEventSchema, { text: "undone" }, { transaction: client });
      expect(rolledBack.id).toBe(1);
      await client.query("ROLLBACK");
    } finally {
      client.release();
    }
    expect((await events.streamInfo(s)).state.events).toBe(0);
    const next = await events.publish(`${s}.a`, TestEventSchema, { text: "kept" });
    expect(next.id).toBe(1);
    await events.ensureConsumer(s, { name: "reader", from: { start: true } });
    await using sub = await events.subscribe(s, "reader", { schema: TestEventSchema });
    const event = await nextEvent(sub[Symbol.asyncIterator]());
    expect(event.data.text).toBe("kept");
    await event.ack();
  });

  it("a refused event aborts the transaction and says to roll it back", async () => {
    const s = uniqueStream();
    await events.ensureStream(s, { subjects: [`${s}.>`] });
    await events.publish(`${s}.a`, TestEventSchema, { text: "first" });
    const client = await env.pool.connect();
    try {
      await client.query("BEGIN");
      const err = await windshiftError(
        events.publish(`${s}.a`, TestEventSchema, { text: "stale" }, { transaction: client, expectedLastId: 0 }),
      );
      // A failed check is an answer, not an error of the statement: the transaction goes on.
      expect(err.code).toBe(ErrorCode.WrongSequence);
      const ok = await events.publish(`${s}.a`, TestEventSchema, { text: "second" }, { transaction: client });
      expect(ok.id).toBe(2);
      await client.query("COMMIT");
    } finally {
      client.release();
    }
    expect((await events.streamInfo(s)).state.events).toBe(2);
  });

  it("is refused with retry, and when it is no database client", async () => {
    const s = uniqueStream();
    await events.ensureStream(s, { subjects: [`${s}.>`] });
    const client = await env.pool.connect();
    try {
      const withRetry = await windshiftError(
        events.publish(`${s}.a`, TestEventSchema, { text: "x" }, { transaction: client, retry: true }),
      );
      expect(withRetry.code).toBe(ErrorCode.Validation);
      expect(withRetry.message).toMatch(/^transaction: cannot be combined with retry/);
    } finally {
      client.release();
    }
    const notClient = await windshiftError(
      events.publish(`${s}.a`, TestEventSchema, { text: "x" }, { transaction: {} as never }),
    );
    expect(notClient.code).toBe(ErrorCode.Validation);
    expect(notClient.message).toMatch(/^transaction: .* is not a database client/);
    expect((await events.streamInfo(s)).state.events).toBe(0);
  });

  it("is refused by an engine without transactions, before anything is stored", async () => {
    await using memory = createMemoryEvents();
    await memory.ensureStream("orders", { subjects: ["orders.>"] });
    const client = await env.pool.connect();
    try {
      const err = await windshiftError(
        memory.publish("orders.a", TestEventSchema, { text: "x" }, { transaction: client }),
      );
      expect(err.code).toBe(ErrorCode.Validation);
      expect(err.message).toMatch(/the memory engine stores events apart from any database transaction/);
    } finally {
      client.release();
    }
    expect((await memory.streamInfo("orders")).state.events).toBe(0);
  });
});
