/**
 * `windshift/postgres`: the events API on PostgreSQL, for services that run
 * PostgreSQL and want events without a broker. A subpath of its own, so
 * that `import "windshift"` does not load `pg`, which is a peer dependency
 * of this entry only.
 *
 * @module
 */

export type { Database } from "../engines/postgres/database.js";
export type { EnsureSchemaOptions, SchemaVersion } from "../engines/postgres/schema.js";
export { ensureSchema } from "../engines/postgres/schema.js";
export type { PostgresEventsOptions } from "./create-postgres-events.js";
export { createPostgresEvents } from "./create-postgres-events.js";
