/**
 * How an append fails: `UNAVAILABLE` when the event is known not to have been
 * stored (PostgreSQL unreachable, no connection in time), `PUBLISH_TIMEOUT`
 * when it was sent and no answer came in time (it may still be stored),
 * `ABORTED` for an aborted signal.
 */
import { describe, expect, it } from "vitest";
import { createAppender } from "../../src/engines/postgres/append.js";
import { quoted } from "../../src/engines/postgres/database.js";
import { ErrorCode } from "../../src/errors.js";
import { waitFor, windshiftError } from "../helpers.js";
import { APPEND, outgoing, uniqueStream, usePostgres } from "./harness.js";

const env = usePostgres();

async function lastId(name: string): Promise<number> {
  const { rows } = await env.pool.query(`SELECT last_id::int FROM ${quoted(env.schema)}.streams WHERE name = $1`, [
    name,
  ]);
  return rows[0].last_id;
}

describe("append failures", () => {
  it("says UNAVAILABLE, not stored, when PostgreSQL cannot be reached", async () => {
    const nowhere = env.createPool({ connectionString: "postgres://postgres@127.0.0.1:1/test" });
    const err = await windshiftError(createAppender(nowhere, { schema: env.schema }).append(outgoing("a.b"), APPEND));
    expect(err.code).toBe(ErrorCode.Unavailable);
    expect(err.message).toMatch(/^publish to "a\.b": no answer from PostgreSQL \(.*\); the event was not stored$/);
  });

  it("says ABORTED for a signal aborted before the call, and stores nothing", async () => {
    const name = uniqueStream();
    await env.stream(name, { subjects: [name] });
    const appender = createAppender(env.pool, { schema: env.schema });
    const err = await windshiftError(
      appender.append(outgoing(name), { timeoutMs: 5_000, signal: AbortSignal.abort() }),
    );
    expect(err.code).toBe(ErrorCode.Aborted);
    expect(await lastId(name)).toBe(0);
  });

  it("says PUBLISH_TIMEOUT when the stream stays locked past timeoutMs: the event is stored once the lock goes", async () => {
    const name = uniqueStream();
    await env.stream(name, { subjects: [name] });
    const appender = createAppender(env.pool, { schema: env.schema });
    await appender.append(outgoing(name), APPEND); // the catalog is read: the next call sends at once
    const holder = await env.pool.connect();
    try {
      await holder.query("BEGIN");
      await holder.query(`SELECT 1 FROM ${quoted(env.schema)}.streams WHERE name = $1 FOR UPDATE`, [name]);
      const err = await windshiftError(appender.append(outgoing(name), { timeoutMs: 200, signal: undefined }));
      expect(err.code).toBe(ErrorCode.PublishTimeout);
      expect(err.message).toBe(`publish to "${name}" timed out: the event may or may not have been stored`);
      await holder.query("COMMIT");
    } finally {
      holder.release();
    }
    // The statement was under way: it goes on, and stores the event.
    await waitFor(async () => (await lastId(name)) === 2, { what: "the timed-out append to be stored" });
  });

  it("says UNAVAILABLE when no connection comes within timeoutMs, and never sends the event", async () => {
    const name = uniqueStream();
    await env.stream(name, { subjects: [name] });
    const pool = env.createPool({ max: 1 });
    const appender = createAppender(pool, { schema: env.schema });
    await appender.append(outgoing(name), APPEND);
    const busy = await pool.connect();
    const err = await windshiftError(appender.append(outgoing(name), { timeoutMs: 200, signal: undefined }));
    busy.release();
    expect(err.code).toBe(ErrorCode.Unavailable);
    expect(err.message).toBe(
      `publish to "${name}": no connection to PostgreSQL within 200 ms (is the pool too small?); the event was not stored`,
    );
    // The connection came after all, and was given back unused.
    await waitFor(() => pool.waitingCount === 0 && pool.idleCount === 1, { what: "the pool to be idle" });
    expect(await lastId(name)).toBe(1);
  });

  it("says UNAVAILABLE, not stored, when the server ends the session during the append; the pool recovers", async () => {
    const name = uniqueStream();
    await env.stream(name, { subjects: [name] });
    const app = uniqueStream("killed");
    const pool = env.createPool({ max: 1, application_name: app });
    const appender = createAppender(pool, { schema: env.schema });
    await appender.append(outgoing(name), APPEND);
    const holder = await env.pool.connect();
    try {
      await holder.query("BEGIN");
      await holder.query(`SELECT 1 FROM ${quoted(env.schema)}.streams WHERE name = $1 FOR UPDATE`, [name]);
      const pending = windshiftError(appender.append(outgoing(name), APPEND));
      await waitFor(
        async () => {
          const { rows } = await env.pool.query(
            "SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'",
            [app],
          );
          return rows.length === 1 && rows[0].killed === true;
        },
        { what: "the append's session to wait for the stream, and be ended" },
      );
      const err = await pending;
      expect(err.code).toBe(ErrorCode.Unavailable);
      expect(err.details).toEqual({ sqlState: "57P01" });
      expect(err.message).toMatch(/^publish to ".*": PostgreSQL cannot answer now \(.*\); the event was not stored$/);
      await holder.query("COMMIT");
    } finally {
      holder.release();
    }
    expect(await lastId(name)).toBe(1);
    // The broken connection was dropped: the next append gets a new one.
    expect(await appender.append(outgoing(name), APPEND)).toMatchObject({ id: 2 });
  });

  it("says ABORTED when the signal aborts while the append waits for the stream", async () => {
    const name = uniqueStream();
    await env.stream(name, { subjects: [name] });
    const appender = createAppender(env.pool, { schema: env.schema });
    await appender.append(outgoing(name), APPEND);
    const holder = await env.pool.connect();
    const controller = new AbortController();
    try {
      await holder.query("BEGIN");
      await holder.query(`SELECT 1 FROM ${quoted(env.schema)}.streams WHERE name = $1 FOR UPDATE`, [name]);
      const pending = windshiftError(appender.append(outgoing(name), { timeoutMs: 10_000, signal: controller.signal }));
      controller.abort(new Error("shutting down"));
      const err = await pending;
      expect(err.code).toBe(ErrorCode.Aborted);
      expect((err.cause as Error).message).toBe("shutting down");
      await holder.query("ROLLBACK");
    } finally {
      holder.release();
    }
  });
});
