/**
 * Brings a schema up to date with the migrations shipped in `sql/postgres/`:
 * one transaction per migration, each recorded in `<schema>.migrations`,
 * safe to run from many processes at once.
 *
 * @module
 */

import type { ClientBase } from "pg";
import { ErrorCode, WindshiftError } from "../../errors.js";
import { throwIfAborted } from "../../internal/abort.js";
import { type Defaults, mergeOptions } from "../../internal/options.js";
import { signal as validSignal } from "../../internal/validate.js";
import {
  type Database,
  DEFAULT_SCHEMA,
  inTransaction,
  lockForTransaction,
  quoted,
  schemaName,
  withConnection,
} from "./database.js";
import { databaseFailure, noAnswer } from "./failures.js";
import { loadMigrations, type Migration } from "./migrations.js";

/** Options of {@link ensureSchema}. */
export interface EnsureSchemaOptions {
  /**
   * The schema to create or bring up to date: letters, digits and `_`, at
   * most 63 bytes, not starting with `pg_`.
   * @default "windshift"
   */
  readonly schema?: string;
  /**
   * Stops before the next migration. A migration under way (or a wait for
   * another process's) is not interrupted.
   * @default undefined
   */
  readonly signal?: AbortSignal;
}

/** The defaults of {@link EnsureSchemaOptions}. */
export const ensureSchemaDefaults: Defaults<EnsureSchemaOptions> = Object.freeze({
  schema: DEFAULT_SCHEMA,
  signal: undefined,
});

/** What {@link ensureSchema} found and did. */
export interface SchemaVersion {
  /** The schema. */
  readonly schema: string;
  /** The highest migration the schema has now. */
  readonly version: number;
  /** The migrations this call applied, in order (empty when the schema was up to date). */
  readonly applied: readonly number[];
}

/**
 * Creates the schema if it is missing and applies the migrations it lacks,
 * in order, each in a transaction of its own that also records it in
 * `<schema>.migrations`. Each transaction first takes an advisory lock keyed
 * on the schema's name, so processes running this at once apply each
 * migration exactly once, and the others wait for it. A schema that is up to
 * date costs two small queries and no lock.
 *
 * A client given as `db` must not be inside a transaction.
 *
 * @example
 * ```ts
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
 * await ensureSchema(pool, { schema: "windshift" });
 * ```
 */
export async function ensureSchema(db: Database, options?: EnsureSchemaOptions): Promise<SchemaVersion> {
  const o = mergeOptions<EnsureSchemaOptions>("options", options, ensureSchemaDefaults);
  const schema = schemaName("schema", o.schema);
  const signal = validSignal("signal", o.signal);
  throwIfAborted(signal);
  const migrations = await loadMigrations();
  try {
    return await withConnection(db, async (client) => {
      const applied: number[] = [];
      let versions = await appliedVersions(client, schema);
      for (const migration of migrations) {
        if (versions.has(migration.version)) continue;
        throwIfAborted(signal);
        if (await apply(client, schema, migration)) applied.push(migration.version);
        versions = await appliedVersions(client, schema);
      }
      return { schema, version: Math.max(0, ...versions), applied };
    });
  } catch (err) {
    throw databaseFailure(err, {
      what: `ensureSchema(${quoted(schema)})`,
      schema,
      rolledBack: "the migration under way was rolled back; run it again",
      unanswered: (cause) => noAnswer(`ensureSchema(${quoted(schema)})`, "run it again: it is idempotent", cause),
    });
  }
}

/** Applies `migration` in a transaction of its own, unless another process did first; true when this call did. */
async function apply(client: ClientBase, schema: string, migration: Migration): Promise<boolean> {
  const name = quoted(schema);
  return inTransaction(client, async () => {
    await lockForTransaction(client, { migrations: schema });
    // Under the lock: whoever held it before may have applied it.
    if ((await appliedVersions(client, schema)).has(migration.version)) return false;
    const exists = await client.query("SELECT 1 FROM pg_namespace WHERE nspname = $1", [schema]);
    if (exists.rowCount === 0) await client.query(`CREATE SCHEMA ${name}`);
    await client.query(`SET LOCAL search_path TO ${name}`);
    await client.query(migration.sql);
    const recorded = await client.query(`SELECT 1 FROM ${name}.migrations WHERE version = $1`, [migration.version]);
    if (recorded.rowCount !== 1) {
      throw new WindshiftError(
        ErrorCode.Server,
        `migration ${migration.file} did not record itself in ${name}.migrations; reinstall windshift`,
      );
    }
    return true;
  });
}

/**
 * The versions recorded in `<schema>.migrations`; none when the schema or the
 * table is missing. Whether the table exists is read from `pg_class` with the
 * statement's snapshot: `to_regclass` reads the session's catalog cache, which
 * need not yet show a table another session created while this one waited
 * for the lock.
 */
async function appliedVersions(client: ClientBase, schema: string): Promise<Set<number>> {
  const found = await client.query(
    `SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relname = 'migrations'`,
    [schema],
  );
  if (found.rowCount === 0) return new Set();
  const rows = await client.query<{ version: number }>(`SELECT version FROM ${quoted(schema)}.migrations`);
  return new Set(rows.rows.map((r) => r.version));
}
