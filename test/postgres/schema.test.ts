/**
 * ensureSchema: the shipped migrations, applied once each, recorded, safe
 * from several processes at once, and the same as applying the files by hand.
 */
import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { quoted } from "../../src/engines/postgres/database.js";
import { loadMigrations, MIGRATIONS_DIRECTORY } from "../../src/engines/postgres/migrations.js";
import { ensureSchema } from "../../src/engines/postgres/schema.js";
import { ErrorCode } from "../../src/errors.js";
import { windshiftError } from "../helpers.js";
import { uniqueSchema, usePostgres } from "./harness.js";

const env = usePostgres();

/** The tables every migrated schema has. */
const TABLES = ["buckets", "consumers", "deliveries", "entries", "events", "migrations", "streams"];
/** The functions every migrated schema has. */
const FUNCTIONS = [
  ...[
    "append",
    "append_many",
    "claim",
    "consumer_row",
    "contents",
    "delete_event",
    "drop_events",
    "drop_expired",
    "drop_inactive",
  ],
  ...["event_bytes", "expire", "inactive", "kv_delete", "kv_lock", "kv_open", "kv_put", "purge", "settle"],
  "utf16_length",
];

/** The tables, functions and migrations a schema has. */
async function contents(schema: string) {
  const tables = await env.pool.query<{ name: string }>(
    "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1",
    [schema],
  );
  const functions = await env.pool.query<{ name: string }>(
    "SELECT routine_name AS name FROM information_schema.routines WHERE routine_schema = $1 ORDER BY 1",
    [schema],
  );
  const migrations = tables.rows.some((r) => r.name === "migrations")
    ? await env.pool.query<{ version: number; name: string }>(
        `SELECT version, name FROM ${quoted(schema)}.migrations ORDER BY version`,
      )
    : { rows: [] };
  return {
    tables: tables.rows.map((r) => r.name),
    functions: functions.rows.map((r) => r.name),
    migrations: migrations.rows,
  };
}

describe("ensureSchema", () => {
  it("creates the schema, applies every migration once and records it; a second run applies nothing", async () => {
    const schema = env.dropLater(uniqueSchema());
    const shipped = await loadMigrations();
    const latest = shipped.length;

    const first = await ensureSchema(env.pool, { schema });
    expect(first).toEqual({ schema, version: latest, applied: shipped.map((m) => m.version) });
    expect(await contents(schema)).toEqual({
      tables: TABLES,
      functions: FUNCTIONS,
      migrations: shipped.map((m) => ({ version: m.version, name: m.name })),
    });

    const second = await ensureSchema(env.pool, { schema });
    expect(second).toEqual({ schema, version: latest, applied: [] });
    expect((await contents(schema)).migrations).toHaveLength(latest);
  });

  it("applies each migration exactly once when 6 processes run it at once on a fresh schema", async () => {
    const schema = env.dropLater(uniqueSchema());
    // Six pools of one connection each: six sessions, as six processes would have.
    const pools = Array.from({ length: 6 }, () => env.createPool({ max: 1 }));
    // Every session connected first, so that the six calls start together.
    await Promise.all(pools.map(async (p) => (await p.connect()).release()));

    const results = await Promise.all(pools.map((p) => ensureSchema(p, { schema })));

    const shipped = (await loadMigrations()).map((m) => m.version);
    for (const r of results) expect(r).toMatchObject({ schema, version: shipped.length });
    // Each migration was applied by exactly one of them.
    expect(results.flatMap((r) => r.applied).sort((a, b) => a - b)).toEqual(shipped);
    expect((await contents(schema)).migrations.map((m) => m.version)).toEqual(shipped);
  });

  it("takes over a schema migrated from the plain SQL files by another tool", async () => {
    const schema = env.dropLater(uniqueSchema());
    const client = await env.pool.connect();
    try {
      await client.query(`CREATE SCHEMA ${quoted(schema)}`);
      for (const migration of await loadMigrations()) {
        // As a migration tool would: each file in its own transaction, search_path set to the schema.
        await client.query("BEGIN");
        await client.query(`SET LOCAL search_path TO ${quoted(schema)}`);
        await client.query(await readFile(new URL(migration.file, MIGRATIONS_DIRECTORY), "utf8"));
        await client.query("COMMIT");
      }
    } finally {
      client.release();
    }
    const result = await ensureSchema(env.pool, { schema });
    expect(result.applied).toEqual([]);
    expect(result.version).toBe((await loadMigrations()).length);
  });

  it("quotes the schema name: one with capitals is its own schema", async () => {
    const schema = env.dropLater(`${uniqueSchema("Mixed_Case")}`);
    const result = await ensureSchema(env.pool, { schema });
    expect(result.applied.length).toBeGreaterThan(0);
    expect((await contents(schema)).tables).toEqual(TABLES);
    expect((await contents(schema.toLowerCase())).tables).toEqual([]);
  });

  it("refuses a schema name that is not an identifier, before touching the database", async () => {
    const cases: [unknown, string][] = [
      ["orders; DROP TABLE x", "is not a schema name"],
      ['a"b', "is not a schema name"],
      ["1st", "is not a schema name"],
      ["", "is not a schema name"],
      [42, "is not a schema name"],
      ["pg_windshift", 'starts with "pg_"'],
      ["x".repeat(64), "longer than PostgreSQL's 63 bytes"],
    ];
    for (const [schema, problem] of cases) {
      const err = await windshiftError(ensureSchema(env.pool, { schema } as { schema: string }));
      expect(err.code).toBe(ErrorCode.Validation);
      expect(err.message).toContain(problem);
    }
  });

  it("refuses an unknown option, and stops on an aborted signal", async () => {
    const typo = await windshiftError(ensureSchema(env.pool, { schemaName: "x" } as never));
    expect(typo.code).toBe(ErrorCode.Validation);
    const aborted = await windshiftError(
      ensureSchema(env.pool, { schema: env.dropLater(uniqueSchema()), signal: AbortSignal.abort() }),
    );
    expect(aborted.code).toBe(ErrorCode.Aborted);
  });

  it("says UNAVAILABLE when PostgreSQL cannot be reached", async () => {
    const nowhere = env.createPool({ connectionString: "postgres://postgres@127.0.0.1:1/test" });
    const err = await windshiftError(ensureSchema(nowhere, { schema: "windshift" }));
    expect(err.code).toBe(ErrorCode.Unavailable);
    expect(err.message).toMatch(/^ensureSchema\("windshift"\): no answer from PostgreSQL .*run it again/);
  });
});
