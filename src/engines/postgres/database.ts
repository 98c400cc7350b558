/**
 * What every part of the PostgreSQL engine shares: the database it is given
 * (a `pg` pool, or one client), the schema name (validated, then quoted
 * wherever it is written into SQL), connections checked out and given back,
 * transactions, and windshift's advisory locks.
 *
 * Only the types of `pg` are imported here: the engine works with the pool or
 * client the caller made, so loading this file loads no driver.
 *
 * @module
 */

import type { ClientBase, Pool, PoolClient } from "pg";
import { isWindshiftError, validationError } from "../../errors.js";
import { describe } from "../../internal/names.js";

/**
 * Where the engine's statements run: a pool (a connection is checked out per
 * call), or one client, which must not be inside a transaction unless the
 * call says it may be.
 */
export type Database = Pool | ClientBase;

/** The schema the engine uses when none is given. */
export const DEFAULT_SCHEMA = "windshift";

/** PostgreSQL's longest identifier, in bytes (NAMEDATALEN - 1). */
const MAX_IDENTIFIER_BYTES = 63;
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Validates a schema name: a plain identifier (letters, digits and `_`, not
 * starting with a digit) of at most 63 bytes, not starting with `pg_`, which
 * PostgreSQL reserves. Case is kept: the name is always quoted.
 */
export function schemaName(field: string, value: unknown): string {
  if (typeof value !== "string" || !IDENTIFIER.test(value)) {
    throw validationError(
      field,
      `${describe(value)} is not a schema name: use letters, digits and _, not starting with a digit (e.g. "windshift")`,
    );
  }
  if (Buffer.byteLength(value) > MAX_IDENTIFIER_BYTES) {
    throw validationError(field, `${describe(value)} is longer than PostgreSQL's ${MAX_IDENTIFIER_BYTES} bytes`);
  }
  if (value.toLowerCase().startsWith("pg_")) {
    throw validationError(field, `${describe(value)} starts with "pg_", which PostgreSQL reserves for its own schemas`);
  }
  return value;
}

/** `identifier` quoted for SQL (`"name"`), whatever it holds. */
export function quoted(identifier: string): string {
  return `"${identifier.replaceAll('"', '""')}"`;
}

/** Whether `db` is a pool (it has idle connections to count) rather than one client. */
export function isPool(db: Database): db is Pool {
  return "idleCount" in db && typeof db.connect === "function";
}

/**
 * Runs `work` on one connection: a connection checked out of the pool and
 * given back afterwards (destroyed when `work` failed with a broken
 * connection), or the client itself.
 */
export async function withConnection<T>(db: Database, work: (client: ClientBase) => Promise<T>): Promise<T> {
  if (!isPool(db)) return work(db);
  const client: PoolClient = await db.connect();
  let broken: Error | undefined;
  // The pool stops listening for a checked-out connection's errors: one the server drops while it is held
  // (a restart) would be an uncaught exception. Kept, it destroys the connection at release instead.
  const onError = (err: Error): void => {
    broken ??= err;
  };
  client.on("error", onError);
  try {
    return await work(client);
  } catch (err) {
    if (isConnectionFailure(err)) broken ??= err instanceof Error ? err : new Error(String(err));
    throw err;
  } finally {
    client.off("error", onError);
    // A broken connection is destroyed, and may still report its end: nobody needs to hear it.
    if (broken !== undefined) client.on("error", () => {});
    client.release(broken);
  }
}

/** Runs `work` inside `BEGIN` … `COMMIT` on `client`, rolling back when it throws. */
export async function inTransaction<T>(client: ClientBase, work: () => Promise<T>): Promise<T> {
  await client.query("BEGIN");
  let result: T;
  try {
    result = await work();
  } catch (err) {
    await client.query("ROLLBACK").catch(() => {});
    throw err;
  }
  await client.query("COMMIT");
  return result;
}

/**
 * The first key of windshift's advisory locks ("WSFT"); the second is a hash
 * of what is locked. Two-key locks live apart from the one-key (bigint) locks
 * applications usually take.
 */
const LOCK_CLASS = 0x57534654;

/** What windshift locks: a schema's migrations, or the stream catalog of a schema. */
export type LockTarget = { readonly migrations: string } | { readonly streamsOf: string };

/**
 * Takes a transaction-scoped advisory lock on `target` (released at commit
 * or rollback), waiting for whoever holds it.
 */
export async function lockForTransaction(client: ClientBase, target: LockTarget): Promise<void> {
  const key = "migrations" in target ? `migrations:${target.migrations}` : `streams:${target.streamsOf}`;
  await client.query(`SELECT pg_advisory_xact_lock(${LOCK_CLASS}, hashtext($1))`, [key]);
}

/**
 * The SQLSTATE of an error the server sent (`23505`, …); `undefined` for any
 * other error. The server's errors carry a `severity` too, which tells them
 * from Node's (`EPIPE` has five letters as well).
 */
export function sqlState(err: unknown): string | undefined {
  if (typeof err !== "object" || err === null || !("severity" in err) || isWindshiftError(err)) return undefined;
  const code = (err as { code?: unknown }).code;
  return typeof code === "string" && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/**
 * Whether `err` means the connection is unusable: the server ended the
 * session (SQLSTATE classes 08 and 57P), or the driver failed without an
 * answer from the server (refused, reset, ended: no SQLSTATE).
 */
export function isConnectionFailure(err: unknown): boolean {
  if (isWindshiftError(err)) return false;
  const state = sqlState(err);
  return state === undefined || state.startsWith("08") || state.startsWith("57P");
}
