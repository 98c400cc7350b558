/**
 * The PostgreSQL engine's key-value buckets, with compare-and-set on a
 * per-bucket revision counter, as the memory engine's and a JetStream
 * bucket's. Each call is one statement (one round trip); see
 * `sql/postgres/004_key_values.sql` for the tables, the lock that decides
 * racing writers, and expiry on the database's clock.
 *
 * @module
 */

import { ErrorCode, WindshiftError } from "../../errors.js";
import { throwIfAborted } from "../../internal/abort.js";
import { describe } from "../../internal/names.js";
import { bucketNotFound, wrongRevision } from "../errors.js";
import type { KeyValue, KeyValueEntry, KeyValueOpen, KeyValueOptions, KeyValueWriteOptions } from "../key-value.js";
import { type Database, quoted, sqlState } from "./database.js";
import { databaseFailure, noAnswer } from "./failures.js";

/**
 * What a bucket needs from its engine: whether the engine was closed, so
 * that a call made after `close()` fails with `CLOSED` (before the signal is
 * looked at, as the memory engine does), and optionally the error to fail
 * with (the engine's own wording).
 */
export interface KeyValueHost {
  /** Whether the engine was closed. */
  isClosed(): boolean;
  /** The `CLOSED` error to throw; {@link closedError} when absent. */
  closedError?(): WindshiftError;
}

/** A host that is never closed, for a bucket used on its own. */
const NEVER_CLOSED: KeyValueHost = Object.freeze({ isClosed: () => false });

/** `CLOSED`: the engine was closed. */
export function closedError(): WindshiftError {
  return new WindshiftError(
    ErrorCode.Closed,
    "the PostgreSQL engine is closed (its store or client was closed); create another to go on",
  );
}

/**
 * Opens key-value bucket `bucket` in `schema` as `how` says: `open` only if
 * it exists (`NOT_FOUND` otherwise); `create` makes it with `how.options`
 * when missing, keeping an existing bucket's settings; `ensure` makes it or
 * updates it to `how.options` (which every handle of the bucket then
 * follows: settings are read by each write). One statement.
 *
 * @example
 * ```ts
 * const kv = await openKeyValue(pool, "windshift", "runs", { mode: "create", options: { ttlMs: 0, replicas: 1 } });
 * const revision = await kv.put("run-1", bytes, { expectedRevision: 0 });
 * ```
 */
export async function openKeyValue(
  db: Database,
  schema: string,
  bucket: string,
  how: KeyValueOpen,
  signal?: AbortSignal,
  host: KeyValueHost = NEVER_CLOSED,
): Promise<KeyValue> {
  checkCall(host, signal);
  const what = `keyValue(${describe(bucket)}, { mode: "${how.mode}" })`;
  const options = how.mode === "open" ? null : optionsJson(how.options);
  try {
    await db.query(`SELECT id FROM ${quoted(schema)}.kv_open($1, $2, $3::jsonb)`, [bucket, how.mode, options]);
  } catch (err) {
    throw failure(
      err,
      what,
      schema,
      bucket,
      "the bucket was not changed",
      "the bucket may or may not have been changed",
    );
  }
  return new PostgresBucket(db, schema, bucket, host);
}

/** The settings as stored: only those `KeyValueOptions` has. */
function optionsJson(options: KeyValueOptions): string {
  return JSON.stringify({ ttlMs: options.ttlMs, replicas: options.replicas });
}

interface WriteRow {
  written: boolean;
  revision: string;
}

/** One bucket, by name: it holds no state, so any number of handles agree. */
class PostgresBucket implements KeyValue {
  readonly #db: Database;
  readonly #schema: string;
  readonly #bucket: string;
  readonly #host: KeyValueHost;

  constructor(db: Database, schema: string, bucket: string, host: KeyValueHost) {
    this.#db = db;
    this.#schema = schema;
    this.#bucket = bucket;
    this.#host = host;
  }

  async get(key: string, signal?: AbortSignal): Promise<KeyValueEntry | undefined> {
    checkCall(this.#host, signal);
    const s = quoted(this.#schema);
    let rows: { value: Buffer | null; revision: string | null }[];
    try {
      // No bucket row: the bucket is gone. A bucket row without an entry: no such key (or expired).
      const result = await this.#db.query<{ value: Buffer | null; revision: string | null }>(
        `SELECT e.value, e.revision
           FROM ${s}.buckets b
           LEFT JOIN ${s}.entries e
             ON e.bucket = b.id AND e.key = $2
            AND NOT coalesce((b.options ->> 'ttlMs')::double precision > 0
                             AND e.written_at <= clock_timestamp()
                                 - (b.options ->> 'ttlMs')::double precision * interval '1 millisecond', false)
          WHERE b.name = $1`,
        [this.#bucket, keyBytes(key)],
      );
      rows = result.rows;
    } catch (err) {
      throw this.#failure(err, `get(${describe(key)})`, "nothing was changed", "nothing was changed; read it again");
    }
    const row = rows[0];
    if (row === undefined) throw bucketNotFound(this.#bucket);
    if (row.value === null || row.revision === null) return undefined;
    // A plain Uint8Array of its own, as the other engines return.
    return { value: new Uint8Array(row.value), revision: Number(row.revision) };
  }

  async put(key: string, value: Uint8Array, options: KeyValueWriteOptions = {}): Promise<number> {
    checkCall(this.#host, options.signal);
    const { expectedRevision } = options;
    // Copied now: the caller may change `value` once put() returned its promise.
    const bytes = Buffer.from(value);
    const row = await this.#write(
      `put(${describe(key)})`,
      `SELECT written, revision FROM ${quoted(this.#schema)}.kv_put($1, $2, $3, $4)`,
      [this.#bucket, keyBytes(key), bytes, expectedRevision ?? null],
    );
    const revision = Number(row.revision);
    if (!row.written) throw wrongRevision(this.#bucket, key, expectedRevision as number, revision);
    return revision;
  }

  async delete(key: string, options: KeyValueWriteOptions = {}): Promise<void> {
    checkCall(this.#host, options.signal);
    const { expectedRevision } = options;
    const row = await this.#write(
      `delete(${describe(key)})`,
      `SELECT written, revision FROM ${quoted(this.#schema)}.kv_delete($1, $2, $3)`,
      [this.#bucket, keyBytes(key), expectedRevision ?? null],
    );
    if (!row.written) throw wrongRevision(this.#bucket, key, expectedRevision as number, Number(row.revision));
  }

  async #write(call: string, sql: string, params: unknown[]): Promise<WriteRow> {
    try {
      const result = await this.#db.query<WriteRow>(sql, params);
      return result.rows[0] as WriteRow;
    } catch (err) {
      throw this.#failure(err, call, "the key was not changed", "the key may or may not have been changed");
    }
  }

  #failure(err: unknown, call: string, rolledBack: string, unanswered: string): WindshiftError {
    const what = `${call} of key-value bucket ${describe(this.#bucket)}`;
    return failure(err, what, this.#schema, this.#bucket, rolledBack, unanswered);
  }
}

/**
 * A key as stored: its UTF-8 bytes (text cannot hold U+0000). A lone
 * surrogate becomes U+FFFD, as with the JetStream engine's base64url keys.
 */
function keyBytes(key: string): Buffer {
  return Buffer.from(key, "utf8");
}

/** `CLOSED` when the host was closed, then `ABORTED` when the signal was aborted. */
function checkCall(host: KeyValueHost, signal: AbortSignal | undefined): void {
  if (host.isClosed()) throw host.closedError?.() ?? closedError();
  throwIfAborted(signal);
}

/** What the database threw, as a `WindshiftError`: `NOT_FOUND` for a missing bucket (the functions' `no_data_found`). */
function failure(
  err: unknown,
  what: string,
  schema: string,
  bucket: string,
  rolledBack: string,
  unanswered: string,
): WindshiftError {
  if (sqlState(err) === "P0002") return bucketNotFound(bucket);
  return databaseFailure(err, { what, schema, rolledBack, unanswered: (cause) => noAnswer(what, unanswered, cause) });
}
