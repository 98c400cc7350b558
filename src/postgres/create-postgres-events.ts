/**
 * `createPostgresEvents`: the events client on the PostgreSQL engine.
 *
 * @module
 */

import pg from "pg";
import { createClient } from "../client/client.js";
import type { Events } from "../client/events.js";
import { type ClientOptions, clientDefaults, readClientOptions } from "../client/options.js";
import { DEFAULT_SCHEMA, schemaName } from "../engines/postgres/database.js";
import { createPostgresEngine } from "../engines/postgres/engine.js";
import { validationError } from "../errors.js";
import { describe } from "../internal/names.js";
import { type Defaults, mergeOptions } from "../internal/options.js";
import * as v from "../internal/validate.js";

/** Options for {@link createPostgresEvents}: where the database is, and the client's own options. */
export interface PostgresEventsOptions extends ClientOptions {
  /**
   * The database, as a `postgres://` URL; the client makes a pool of its
   * own and ends it on `close()`. Give this or `pool`.
   * @default undefined
   */
  readonly connectionString?: string;
  /**
   * A `pg` pool you made and keep: the client checks connections out of it
   * (one is held while any subscription is open, for `LISTEN`) and leaves
   * it open on `close()`. Give this or `connectionString`.
   * @default undefined
   */
  readonly pool?: pg.Pool;
  /**
   * The schema of windshift's tables: letters, digits and `_`, at most 63
   * bytes, not starting with `pg_`.
   * @default "windshift"
   */
  readonly schema?: string;
  /**
   * Create the schema and apply the migrations it lacks before the first
   * call (`ensureSchema`). Turn off when your own migration tool applies
   * the SQL files shipped in `windshift/sql/postgres/`.
   * @default true
   */
  readonly migrate?: boolean;
  /**
   * How often a subscription with nothing to do looks for events without
   * being woken. New events wake subscriptions at once (`LISTEN`/`NOTIFY`);
   * polling is the safety net, so a lost notification costs at most this.
   * @default 1_000
   */
  readonly pollIntervalMs?: number;
  /**
   * The largest payload one event may have, in bytes.
   * @default 1_048_576 (nats-server's default, so that events move between engines)
   */
  readonly maxPayloadBytes?: number;
}

/** The defaults of {@link PostgresEventsOptions}. */
const postgresEventsDefaults: Defaults<PostgresEventsOptions> = Object.freeze({
  ...clientDefaults,
  connectionString: undefined,
  pool: undefined,
  schema: DEFAULT_SCHEMA,
  migrate: true,
  pollIntervalMs: 1_000,
  maxPayloadBytes: 1_048_576,
});

/**
 * Creates an events client on PostgreSQL: the same {@link Events} as
 * `createEvents(nc)` gives, with streams, consumers and key-value buckets
 * kept in tables of one schema. Nothing is sent until the first call, which
 * applies the schema's migrations (unless `migrate: false`).
 *
 * @example
 * ```ts
 * import { createPostgresEvents } from "windshift/postgres";
 *
 * const events = createPostgresEvents({ connectionString: "postgres://127.0.0.1:5432/app" });
 * await events.ensureStream("orders", { subjects: ["orders.>"] });
 * await events.publish("orders.created", OrderCreatedSchema, { orderId: "1" });
 * await events.close();
 * ```
 */
export function createPostgresEvents(options: PostgresEventsOptions): Events {
  const o = mergeOptions<PostgresEventsOptions>("options", options, postgresEventsDefaults);
  const settings = readClientOptions(o);
  const schema = schemaName("schema", o.schema);
  const migrate = v.boolean("migrate", o.migrate) as boolean;
  const pollIntervalMs = v.durationMs("pollIntervalMs", o.pollIntervalMs, 1) as number;
  const maxPayloadBytes = v.integer("maxPayloadBytes", o.maxPayloadBytes, 1, 256 * 1024 * 1024) as number;
  let pool: pg.Pool;
  let ownsPool = false;
  if (o.pool !== undefined) {
    if (o.connectionString !== undefined) {
      throw validationError("connectionString", "give either connectionString or pool, not both");
    }
    if (!isPool(o.pool)) throw validationError("pool", `${describe(o.pool)} is not a pg.Pool`);
    pool = o.pool;
  } else {
    if (typeof o.connectionString !== "string" || o.connectionString === "") {
      throw validationError(
        "connectionString",
        `${describe(o.connectionString)} is not a connection string: give connectionString ("postgres://host:5432/db") or pool`,
      );
    }
    pool = new pg.Pool({ connectionString: o.connectionString });
    // An idle connection the server ends is replaced at the next checkout; it must not crash the process.
    pool.on("error", (err) => settings.logger.warn("an idle PostgreSQL connection failed", { error: String(err) }));
    ownsPool = true;
  }
  const engine = createPostgresEngine({
    pool,
    schema,
    migrate,
    pollIntervalMs,
    maxPayloadBytes,
    logger: settings.logger,
    ownsPool,
  });
  return createClient(engine, settings);
}

function isPool(value: unknown): value is pg.Pool {
  const p = value as Partial<pg.Pool> | null;
  return (
    typeof p === "object" &&
    p !== null &&
    typeof p.connect === "function" &&
    typeof p.query === "function" &&
    "idleCount" in p
  );
}
