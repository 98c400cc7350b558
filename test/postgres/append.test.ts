/**
 * Appends on PostgreSQL, one writer at a time: what is stored, which stream
 * captures a subject, and the checks, worded as the memory engine words them.
 */
import { describe, expect, it } from "vitest";
import type { Engine, OutgoingEvent } from "../../src/engines/engine.js";
import { createMemoryEngine } from "../../src/engines/memory/engine.js";
import { createAppender } from "../../src/engines/postgres/append.js";
import { quoted } from "../../src/engines/postgres/database.js";
import { ErrorCode } from "../../src/errors.js";
import { realClock } from "../../src/internal/clock.js";
import { resolveStreamConfig, type StreamOptions } from "../../src/streams/streams.js";
import { windshiftError } from "../helpers.js";
import { APPEND, outgoing, uniqueSchema, uniqueStream, usePostgres } from "./harness.js";

const env = usePostgres();

describe("append", () => {
  it("stores the event with gapless ids from 1, its headers (with the checks and key under JetStream's names) and the database's time", async () => {
    const name = uniqueStream();
    await env.stream(name, { subjects: [`${name}.>`] });
    const appender = createAppender(env.pool, { schema: env.schema });

    const first = await appender.append(
      outgoing(`${name}.a`, {
        headers: [
          ["X-One", "1"],
          ["x-one", "2"],
        ],
      }),
      APPEND,
    );
    const second = await appender.append(
      outgoing(`${name}.b`, { idempotencyKey: "k-1", expectedLastId: 1, expectedLastSubjectId: 0 }),
      APPEND,
    );
    expect(first).toEqual({ id: 1, stream: name, duplicate: false });
    expect(second).toEqual({ id: 2, stream: name, duplicate: false });

    const rows = await env.pool.query(
      `SELECT e.id::int, e.subject, e.headers, e.payload, e.msg_id, e.stored_at
         FROM ${quoted(env.schema)}.events e JOIN ${quoted(env.schema)}.streams s ON s.id = e.stream
        WHERE s.name = $1 ORDER BY e.id`,
      [name],
    );
    expect(rows.rows.map(({ stored_at: _, ...rest }) => rest)).toEqual([
      {
        id: 1,
        subject: `${name}.a`,
        headers: [
          ["X-One", "1"],
          ["x-one", "2"],
        ],
        payload: Buffer.from(`payload of ${name}.a`),
        msg_id: null,
      },
      {
        id: 2,
        subject: `${name}.b`,
        headers: [
          ["Nats-Msg-Id", "k-1"],
          ["Nats-Expected-Last-Sequence", "1"],
          ["Nats-Expected-Last-Subject-Sequence", "0"],
        ],
        payload: Buffer.from(`payload of ${name}.b`),
        msg_id: "k-1",
      },
    ]);
    const [a, b] = rows.rows.map((r) => (r.stored_at as Date).getTime());
    expect(b).toBeGreaterThanOrEqual(a as number);
    expect(Math.abs((a as number) - Date.now())).toBeLessThan(60_000);
  });

  it("stores a payload given as a view into a larger buffer, bytes exactly", async () => {
    const name = uniqueStream();
    await env.stream(name, { subjects: [name] });
    const appender = createAppender(env.pool, { schema: env.schema });
    const whole = Uint8Array.from({ length: 256 }, (_, i) => i);
    await appender.append(outgoing(name, { payload: whole.subarray(10, 20) }), APPEND);
    const row = await env.pool.query(`SELECT payload FROM ${quoted(env.schema)}.events WHERE subject = $1`, [name]);
    expect(row.rows[0].payload).toEqual(Buffer.from(whole.subarray(10, 20)));
  });

  it("finds the stream capturing a subject through * and > wildcards, and keeps ids per stream", async () => {
    const orders = uniqueStream("orders");
    const audit = uniqueStream("audit");
    await env.stream(orders, { subjects: [`${orders}.*.created`, `${orders}.*.paid.>`] });
    await env.stream(audit, { subjects: [audit] });
    const appender = createAppender(env.pool, { schema: env.schema });

    expect(await appender.append(outgoing(`${orders}.eu.created`), APPEND)).toMatchObject({ stream: orders, id: 1 });
    expect(await appender.append(outgoing(audit), APPEND)).toMatchObject({ stream: audit, id: 1 });
    expect(await appender.append(outgoing(`${orders}.eu.paid.card`), APPEND)).toMatchObject({ stream: orders, id: 2 });
    expect(await appender.append(outgoing(`${orders}.us.paid.x.y`), APPEND)).toMatchObject({ stream: orders, id: 3 });

    for (const subject of [`${orders}.eu.west.created`, `${orders}.eu.paid`, `${orders}.eu.shipped`, `${audit}.x`]) {
      const err = await windshiftError(appender.append(outgoing(subject), APPEND));
      expect(err.code).toBe(ErrorCode.UnboundSubject);
      expect(err.details).toEqual({ subject });
    }
  });

  it("says UNBOUND_SUBJECT for a subject no stream captures, with the other engines' words", async () => {
    const appender = createAppender(env.pool, { schema: env.schema });
    const err = await windshiftError(appender.append(outgoing("nobody.captures.this"), APPEND));
    expect(err.code).toBe(ErrorCode.UnboundSubject);
    expect(err.message).toBe(
      'no stream captures subject "nobody.captures.this": add it (or a wildcard such as "nobody.>") to a stream\'s subjects with ensureStream',
    );
  });

  it("reports what the memory engine reports for the same appends: ids, duplicates and failed checks, word for word", async () => {
    const name = uniqueStream();
    const options: StreamOptions = { subjects: [`${name}.*`] };
    await env.stream(name, options);
    const postgres = createAppender(env.pool, { schema: env.schema });
    const memory: Engine = createMemoryEngine({ clock: realClock });
    await memory.ensureStream(resolveStreamConfig(name, options), undefined);

    const a = `${name}.a`;
    const b = `${name}.b`;
    const script: OutgoingEvent[] = [
      outgoing(a, { expectedLastId: 0 }),
      outgoing(a, { expectedLastId: 0 }),
      outgoing(b, { expectedLastSubjectId: 0, idempotencyKey: "once" }),
      outgoing(b, { idempotencyKey: "once", expectedLastId: 99 }),
      outgoing(b, { expectedLastSubjectId: 0 }),
      outgoing(b, { expectedLastSubjectId: 2 }),
      outgoing(a, { expectedLastSubjectId: 1, expectedLastId: 1 }),
      outgoing(a, { expectedLastSubjectId: 1, expectedLastId: 7 }),
      outgoing(a, { expectedLastSubjectId: 2, expectedLastId: 2 }),
      outgoing(a, { expectedLastSubjectId: 0, expectedLastId: 2 }),
      outgoing(a, { expectedLastSubjectId: 1, expectedLastId: 3 }),
      outgoing(`${name}.c.d`),
      outgoing(a, { expectedLastId: 4 }),
    ];
    const outcome = (engine: { append: Engine["append"] }) => async (event: OutgoingEvent) => {
      try {
        return await engine.append(event, APPEND);
      } catch (err) {
        const e = err as { code: string; message: string; details: unknown };
        return { code: e.code, message: e.message, details: e.details };
      }
    };
    const onPostgres = [];
    const onMemory = [];
    for (const event of script) {
      onPostgres.push(await outcome(postgres)(event));
      onMemory.push(await outcome(memory)(event));
    }
    await memory.close();
    expect(onPostgres).toEqual(onMemory);
    // What the script exercised, so that a change to it cannot quietly test less.
    expect(onPostgres.map((o) => ("code" in o ? o.code : o.duplicate ? "duplicate" : `id ${o.id}`))).toEqual([
      "id 1",
      "WRONG_SEQUENCE",
      "id 2",
      "duplicate",
      "WRONG_SEQUENCE",
      "id 3",
      "WRONG_SEQUENCE",
      "WRONG_SEQUENCE",
      "WRONG_SEQUENCE",
      "WRONG_SEQUENCE",
      "id 4",
      "UNBOUND_SUBJECT",
      "id 5",
    ]);
  });

  it("says SERVER, naming ensureSchema, when the schema was never prepared", async () => {
    const schema = env.dropLater(uniqueSchema());
    const appender = createAppender(env.pool, { schema });
    const err = await windshiftError(appender.append(outgoing("a.b"), APPEND));
    expect(err.code).toBe(ErrorCode.Server);
    expect(err.message).toContain(`run ensureSchema(pool, { schema: "${schema}" }) first`);
  });

  it("refuses a schema name that is not an identifier", () => {
    expect(() => createAppender(env.pool, { schema: "x; DROP SCHEMA y" })).toThrow(/is not a schema name/);
  });
});
