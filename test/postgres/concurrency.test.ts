/**
 * Appends from several sessions at once, as from several processes: ids
 * stay gapless and are committed in id order, and of racing writers with the
 * same expectation (or idempotency key) exactly one stores its event.
 */
import { describe, expect, it } from "vitest";
import type { Appended } from "../../src/engines/engine.js";
import { createAppender } from "../../src/engines/postgres/append.js";
import { quoted } from "../../src/engines/postgres/database.js";
import { ensureSchema } from "../../src/engines/postgres/schema.js";
import { ensureStream } from "../../src/engines/postgres/streams.js";
import { ErrorCode, type WindshiftError } from "../../src/errors.js";
import { resolveStreamConfig } from "../../src/streams/streams.js";
import { waitFor } from "../helpers.js";
import { APPEND, outgoing, uniqueSchema, uniqueStream, usePostgres } from "./harness.js";

const env = usePostgres();
const WRITERS = 8;

/**
 * A schema of its own whose events table records the order in which the
 * inserting transactions commit: a deferred constraint trigger runs at
 * commit, and takes the next value of a sequence there.
 */
async function schemaWithCommitProbe(): Promise<string> {
  const schema = env.dropLater(uniqueSchema());
  await ensureSchema(env.pool, { schema });
  const s = quoted(schema);
  await env.pool.query(`
    CREATE SEQUENCE ${s}.commit_order;
    CREATE TABLE ${s}.commits (stream integer, id bigint, position bigint);
    CREATE FUNCTION ${s}.record_commit() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO ${s}.commits VALUES (NEW.stream, NEW.id, nextval('${s}.commit_order'));
      RETURN NULL;
    END $$;
    CREATE CONSTRAINT TRIGGER record_commit AFTER INSERT ON ${s}.events
      DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ${s}.record_commit();`);
  return schema;
}

/** A reader that polls for new ids as a consumer would, noting any id it finds below or apart from what it saw. */
function startReader(schema: string, stream: string) {
  const pool = env.createPool({ max: 1 });
  const problems: string[] = [];
  let seen = 0;
  let reads = 0;
  let stopped = false;
  const readOnce = async (): Promise<void> => {
    const { rows } = await pool.query<{ id: number }>(
      `SELECT e.id::int FROM ${quoted(schema)}.events e JOIN ${quoted(schema)}.streams s ON s.id = e.stream
        WHERE s.name = $1 AND e.id > $2 ORDER BY e.id`,
      [stream, seen],
    );
    if (rows.length > 0) reads++;
    for (const { id } of rows) {
      if (id !== seen + 1) problems.push(`after id ${seen} the next id visible was ${id}`);
      seen = id;
    }
  };
  const loop = (async () => {
    while (!stopped) await readOnce();
  })();
  return {
    /** The highest id read so far. */
    seen: () => seen,
    /** Stops, reads what is left, and says what it saw. */
    async stop() {
      stopped = true;
      await loop;
      await readOnce();
      return { seen, reads, problems };
    },
  };
}

/** Pools of one connection each, connected: separate sessions, as separate processes have. */
async function sessions(count: number, applicationName: string) {
  const pools = Array.from({ length: count }, () => env.createPool({ max: 1, application_name: applicationName }));
  await Promise.all(pools.map(async (p) => (await p.connect()).release()));
  return pools;
}

/**
 * Holds stream `name`'s row lock in a transaction of its own, so that
 * appends started now queue on it; `release()` commits once `waiting`
 * sessions of `applicationName` wait for the lock, and they race.
 */
async function holdStream(schema: string, name: string) {
  const client = await env.pool.connect();
  await client.query("BEGIN");
  await client.query(`SELECT 1 FROM ${quoted(schema)}.streams WHERE name = $1 FOR NO KEY UPDATE`, [name]);
  return {
    async release(applicationName: string, waiting: number) {
      await waitFor(
        async () => {
          const { rows } = await env.pool.query<{ n: number }>(
            "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'",
            [applicationName],
          );
          return rows[0]?.n === waiting;
        },
        { what: `${waiting} appends waiting for the stream's lock` },
      );
      await client.query("COMMIT");
      client.release();
    },
  };
}

describe("concurrent appends", () => {
  it(`keeps ids gapless and in commit order with ${WRITERS} sessions appending to one stream`, async () => {
    const schema = await schemaWithCommitProbe();
    const name = uniqueStream();
    await ensureStream(env.pool, schema, resolveStreamConfig(name, { subjects: [`${name}.*`] }));
    const perWriter = 100;
    const reader = startReader(schema, name);
    const pools = await sessions(WRITERS, uniqueStream("writer"));

    const results = await Promise.all(
      pools.map(async (pool, w) => {
        const appender = createAppender(pool, { schema });
        const ids: number[] = [];
        for (let i = 0; i < perWriter; i++) ids.push((await appender.append(outgoing(`${name}.w${w}`), APPEND)).id);
        return ids;
      }),
    );
    const read = await reader.stop();

    const total = WRITERS * perWriter;
    const all = Array.from({ length: total }, (_, i) => i + 1);
    expect(results.flat().sort((a, b) => a - b)).toEqual(all);
    for (const ids of results) expect(ids).toEqual([...ids].sort((a, b) => a - b));
    const commits = await env.pool.query<{ id: number }>(
      `SELECT id::int FROM ${quoted(schema)}.commits ORDER BY position`,
    );
    expect(commits.rows.map((r) => r.id)).toEqual(all);
    expect(read).toMatchObject({ seen: total, problems: [] });
    // The reader read while the writers wrote, not once at the end.
    expect(read.reads).toBeGreaterThan(1);
    const last = await env.pool.query(`SELECT last_id::int FROM ${quoted(schema)}.streams WHERE name = $1`, [name]);
    expect(last.rows[0].last_id).toBe(total);
  });

  it("has probes that do see ids committed out of order (control: ids given without the stream's lock)", async () => {
    const schema = await schemaWithCommitProbe();
    const name = uniqueStream();
    await ensureStream(env.pool, schema, resolveStreamConfig(name, { subjects: [name] }));
    const s = quoted(schema);
    const insert = `INSERT INTO ${s}.events (stream, id, subject, payload, stored_at)
                    SELECT id, $2::bigint, $1::text, '', now() FROM ${s}.streams WHERE name = $1`;
    const reader = startReader(schema, name);
    const [early, late] = [await env.pool.connect(), await env.pool.connect()];
    try {
      await early.query("BEGIN");
      await early.query(insert, [name, 1]);
      await late.query("BEGIN");
      await late.query(insert, [name, 2]);
      await late.query("COMMIT");
      // A consumer reads id 2 while id 1 is not committed yet …
      await waitFor(() => reader.seen() === 2, { what: "the reader to see id 2" });
      await early.query("COMMIT");
    } finally {
      early.release();
      late.release();
    }
    const read = await reader.stop();
    const commits = await env.pool.query<{ id: number }>(`SELECT id::int FROM ${s}.commits ORDER BY position`);
    expect(commits.rows.map((r) => r.id)).toEqual([2, 1]);
    // … and, reading on from 2, never sees 1.
    expect(read.problems).toEqual(["after id 0 the next id visible was 2"]);
    expect(read.seen).toBe(2);
  });

  it(`lets exactly one of ${WRITERS} racing writers with the same expectedLastId store, round after round`, async () => {
    const name = uniqueStream();
    await env.stream(name, { subjects: [`${name}.*`] });
    const app = uniqueStream("racer");
    const appenders = (await sessions(WRITERS, app)).map((pool) => createAppender(pool, { schema: env.schema }));
    for (let round = 0; round < 5; round++) {
      const hold = await holdStream(env.schema, name);
      const racing = appenders.map((a, w) =>
        a.append(outgoing(`${name}.w${w}`, { expectedLastId: round }), APPEND).then(
          (stored) => stored,
          (err: WindshiftError) => err,
        ),
      );
      await hold.release(app, WRITERS);
      const outcomes = await Promise.all(racing);
      const won = outcomes.filter((o): o is Appended => !(o instanceof Error));
      expect(won).toEqual([{ id: round + 1, stream: name, duplicate: false }]);
      for (const lost of outcomes.filter((o): o is WindshiftError => o instanceof Error)) {
        expect(lost.code).toBe(ErrorCode.WrongSequence);
        expect(lost.details).toMatchObject({ option: "expectedLastId", expected: round, actual: round + 1 });
      }
    }
  });

  it(`lets exactly one of ${WRITERS} racing writers with the same expectedLastSubjectId store`, async () => {
    const name = uniqueStream();
    await env.stream(name, { subjects: [`${name}.*`] });
    const appender = createAppender(env.pool, { schema: env.schema });
    await appender.append(outgoing(`${name}.other`), APPEND);
    const app = uniqueStream("racer");
    const appenders = (await sessions(WRITERS, app)).map((pool) => createAppender(pool, { schema: env.schema }));
    const hold = await holdStream(env.schema, name);
    const racing = appenders.map((a) =>
      a.append(outgoing(`${name}.key`, { expectedLastSubjectId: 0 }), APPEND).then(
        (stored) => stored,
        (err: WindshiftError) => err,
      ),
    );
    await hold.release(app, WRITERS);
    const outcomes = await Promise.all(racing);
    expect(outcomes.filter((o) => !(o instanceof Error))).toEqual([{ id: 2, stream: name, duplicate: false }]);
    const lost = outcomes.filter((o): o is WindshiftError => o instanceof Error);
    expect(lost).toHaveLength(WRITERS - 1);
    for (const err of lost) {
      expect(err.details).toMatchObject({ option: "expectedLastSubjectId", expected: 0, actual: 2 });
    }
  });

  it(`stores an idempotency key once when ${WRITERS} writers race with it, and gives the others its id`, async () => {
    const name = uniqueStream();
    await env.stream(name, { subjects: [name] });
    const app = uniqueStream("racer");
    const appenders = (await sessions(WRITERS, app)).map((pool) => createAppender(pool, { schema: env.schema }));
    const hold = await holdStream(env.schema, name);
    const racing = appenders.map((a) => a.append(outgoing(name, { idempotencyKey: "order-1" }), APPEND));
    await hold.release(app, WRITERS);
    const outcomes = await Promise.all(racing);
    expect(outcomes.filter((o) => !o.duplicate)).toEqual([{ id: 1, stream: name, duplicate: false }]);
    expect(outcomes.filter((o) => o.duplicate)).toEqual(
      Array.from({ length: WRITERS - 1 }, () => ({ id: 1, stream: name, duplicate: true })),
    );
    // Duplicates took no id.
    const next = await createAppender(env.pool, { schema: env.schema }).append(outgoing(name), APPEND);
    expect(next.id).toBe(2);
  });
});
