/**
 * Stream rows: created and updated to exactly the config given, refused
 * when subjects overlap (as the memory engine refuses them, word for word,
 * and under concurrency), and appends following the catalog as it changes
 * under an appender's cached copy.
 */
import { describe, expect, it } from "vitest";
import type { Engine, StreamConfig } from "../../src/engines/engine.js";
import { createMemoryEngine } from "../../src/engines/memory/engine.js";
import { createAppender } from "../../src/engines/postgres/append.js";
import { quoted } from "../../src/engines/postgres/database.js";
import { deleteStream, ensureStream, loadStreams } from "../../src/engines/postgres/streams.js";
import { ErrorCode, type WindshiftError } from "../../src/errors.js";
import { realClock } from "../../src/internal/clock.js";
import { resolveStreamConfig, type StreamOptions } from "../../src/streams/streams.js";
import { windshiftError } from "../helpers.js";
import { APPEND, outgoing, uniqueStream, usePostgres } from "./harness.js";

const env = usePostgres();

const config = (name: string, options: StreamOptions): StreamConfig => resolveStreamConfig(name, options);

describe("ensureStream", () => {
  it("creates the row, then updates it to exactly the config given, keeping its events and last id", async () => {
    const name = uniqueStream();
    const wanted = config(name, {
      subjects: [`${name}.>`],
      maxAgeMs: 60_000,
      maxEventsPerSubject: 5,
      discardPolicy: "new",
      sources: [{ stream: "elsewhere", from: { time: new Date("2024-05-06T07:08:09.123Z") }, subjects: ["a.b"] }],
    });
    expect(await ensureStream(env.pool, env.schema, wanted)).toEqual({ config: wanted, created: true });
    expect((await loadStreams(env.pool, env.schema)).find((s) => s.config.name === name)?.config).toEqual(wanted);

    await createAppender(env.pool, { schema: env.schema }).append(outgoing(`${name}.a`), APPEND);
    const changed = config(name, { subjects: [`${name}.>`], maxEvents: 10 });
    expect(await ensureStream(env.pool, env.schema, changed)).toEqual({ config: changed, created: false });
    expect((await loadStreams(env.pool, env.schema)).find((s) => s.config.name === name)?.config).toEqual(changed);
    const row = await env.pool.query(
      `SELECT last_id::int, (SELECT count(*)::int FROM ${quoted(env.schema)}.events e WHERE e.stream = s.id) AS events
         FROM ${quoted(env.schema)}.streams s WHERE name = $1`,
      [name],
    );
    expect(row.rows[0]).toEqual({ last_id: 1, events: 1 });
  });

  it("refuses what the memory engine refuses, with the same words: overlapping subjects, a storage change", async () => {
    const [a, b, c] = [uniqueStream("a"), uniqueStream("b"), uniqueStream("c")];
    const memory: Engine = createMemoryEngine({ clock: realClock });
    const attempts: StreamConfig[] = [
      config(a, { subjects: [`${a}.>`, `shared.*.x`] }),
      config(b, { subjects: [`${b}.one`, "shared.y.>"] }),
      config(c, { subjects: [`${c}.*`, `${c}.one`] }),
      config(a, { subjects: [`${a}.>`], storage: "memory" }),
      config(b, { subjects: [`${b}.one`, "shared.y.x"] }),
    ];
    const outcome = async (ensure: () => Promise<unknown>) => {
      try {
        await ensure();
        return "ok";
      } catch (err) {
        const e = err as WindshiftError;
        return { code: e.code, message: e.message, details: e.details };
      }
    };
    const onPostgres = [];
    const onMemory = [];
    for (const attempt of attempts) {
      onPostgres.push(await outcome(() => ensureStream(env.pool, env.schema, attempt)));
      onMemory.push(await outcome(() => memory.ensureStream(attempt, undefined)));
    }
    await memory.close();
    expect(onPostgres).toEqual(onMemory);
    expect(onPostgres.map((o) => (typeof o === "string" ? o : o.message))).toEqual([
      "ok",
      `stream "${b}": subject "shared.y.>" overlaps the subjects of stream "${a}": a subject belongs to one stream only; remove it from one of them`,
      `stream "${c}": its subjects "${c}.*" and "${c}.one" overlap: keep only the wider one`,
      `stream "${a}": the storage type cannot change in place ("file" to "memory"): keep storage: "file", or delete the stream and create it again (its events are lost)`,
      `stream "${b}": subject "shared.y.x" overlaps the subjects of stream "${a}": a subject belongs to one stream only; remove it from one of them`,
    ]);
  });

  it("creates one of 6 streams with overlapping subjects created at once from 6 sessions", async () => {
    const prefix = uniqueStream("p");
    const pools = Array.from({ length: 6 }, () => env.createPool({ max: 1 }));
    await Promise.all(pools.map(async (p) => (await p.connect()).release()));
    // Any two of them overlap: each captures `${prefix}.a.b`.
    const subjects = [
      `${prefix}.>`,
      `${prefix}.a.>`,
      `${prefix}.*.b`,
      `${prefix}.a.b`,
      `${prefix}.a.*`,
      `${prefix}.*.*`,
    ];
    const outcomes = await Promise.all(
      pools.map((pool, i) =>
        ensureStream(pool, env.schema, config(`${prefix}_${i}`, { subjects: [subjects[i] as string] })).then(
          () => "created",
          (err: WindshiftError) => err.code,
        ),
      ),
    );
    expect(outcomes.filter((o) => o === "created")).toHaveLength(1);
    expect(outcomes.filter((o) => o === ErrorCode.Server)).toHaveLength(5);
  });

  it("deletes a stream with its events; false when there is none", async () => {
    const name = uniqueStream();
    await env.stream(name, { subjects: [name] });
    await createAppender(env.pool, { schema: env.schema }).append(outgoing(name), APPEND);
    expect(await deleteStream(env.pool, env.schema, name)).toBe(true);
    expect(await deleteStream(env.pool, env.schema, name)).toBe(false);
    const left = await env.pool.query(
      `SELECT count(*)::int AS n FROM ${quoted(env.schema)}.events WHERE subject = $1`,
      [name],
    );
    expect(left.rows[0].n).toBe(0);
  });
});

describe("appends as the catalog changes under an appender's copy", () => {
  it("follows a subject to the stream that captures it now, and calls it unbound once none does", async () => {
    const [first, second] = [uniqueStream(), uniqueStream()];
    const subject = `${first}.x`;
    await env.stream(first, { subjects: [`${first}.*`] });
    const appender = createAppender(env.pool, { schema: env.schema });
    expect(await appender.append(outgoing(subject), APPEND)).toEqual({ id: 1, stream: first, duplicate: false });

    // Another process moves the subject to another stream; the appender's copy still has the old one.
    await env.stream(first, { subjects: [`${first}_moved`] });
    await env.stream(second, { subjects: [`${first}.*`] });
    expect(await appender.append(outgoing(subject), APPEND)).toEqual({ id: 1, stream: second, duplicate: false });

    // Deleted and created again with the same subjects: a new stream, from id 1.
    await deleteStream(env.pool, env.schema, second);
    await env.stream(second, { subjects: [`${first}.*`] });
    expect(await appender.append(outgoing(subject), APPEND)).toEqual({ id: 1, stream: second, duplicate: false });

    await deleteStream(env.pool, env.schema, second);
    const err = await windshiftError(appender.append(outgoing(subject), APPEND));
    expect(err.code).toBe(ErrorCode.UnboundSubject);
  });

  it("finds a stream created after the appender last looked", async () => {
    const appender = createAppender(env.pool, { schema: env.schema });
    const name = uniqueStream();
    expect((await windshiftError(appender.append(outgoing(name), APPEND))).code).toBe(ErrorCode.UnboundSubject);
    await env.stream(name, { subjects: [name] });
    expect(await appender.append(outgoing(name), APPEND)).toEqual({ id: 1, stream: name, duplicate: false });
  });
});
