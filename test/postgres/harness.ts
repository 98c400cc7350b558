/**
 * What the PostgreSQL tests share: the database (PostgreSQL at
 * 127.0.0.1:5432, database `test`, or `WINDSHIFT_POSTGRES_URL`), pools that
 * are closed after the file, and schemas with unique names that are dropped
 * after it.
 */
import { randomUUID } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll } from "vitest";
import type { OutgoingEvent, StreamConfig } from "../../src/engines/engine.js";
import { quoted } from "../../src/engines/postgres/database.js";
import { ensureSchema } from "../../src/engines/postgres/schema.js";
import { ensureStream } from "../../src/engines/postgres/streams.js";
import { resolveStreamConfig, type StreamOptions } from "../../src/streams/streams.js";

/** The test database. */
export const POSTGRES_URL = process.env.WINDSHIFT_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";

/** A schema name no other test uses. */
export function uniqueSchema(prefix = "ws_test"): string {
  return `${prefix}_${randomUUID().replaceAll("-", "").slice(0, 12)}`;
}

/** A unique stream name. */
export function uniqueStream(prefix = "s"): string {
  return `${prefix}_${randomUUID().replaceAll("-", "").slice(0, 10)}`;
}

/** The file's database: a pool over a fresh, migrated schema, and more pools and schemas on demand. */
export interface PostgresEnv {
  /** A pool of 10 connections. */
  pool: pg.Pool;
  /** The schema ensureSchema prepared for this file. */
  schema: string;
  /** Another pool (closed after the file). */
  createPool(config?: pg.PoolConfig): pg.Pool;
  /** A schema name that is dropped after the file (not created). */
  dropLater(schema: string): string;
  /** Creates stream `name` in the file's schema, returning its whole config. */
  stream(name: string, options: StreamOptions): Promise<StreamConfig>;
}

/** Prepares the file's schema before its tests; drops every schema and closes every pool after them. */
export function usePostgres(): PostgresEnv {
  const pools: pg.Pool[] = [];
  const schemas: string[] = [];
  const env = {} as PostgresEnv;
  env.createPool = (config = {}) => {
    const pool = new pg.Pool({ connectionString: POSTGRES_URL, ...config });
    // An idle connection the server ends (a test restarting nothing, or a drop) must not crash the run.
    pool.on("error", () => {});
    pools.push(pool);
    return pool;
  };
  env.dropLater = (schema) => {
    schemas.push(schema);
    return schema;
  };
  env.stream = async (name, options) => {
    const config = resolveStreamConfig(name, options);
    return (await ensureStream(env.pool, env.schema, config)).config;
  };
  beforeAll(async () => {
    env.pool = env.createPool({ max: 10 });
    env.schema = env.dropLater(uniqueSchema());
    await ensureSchema(env.pool, { schema: env.schema });
  });
  afterAll(async () => {
    const admin = new pg.Client({ connectionString: POSTGRES_URL });
    await admin.connect();
    try {
      for (const schema of schemas) await admin.query(`DROP SCHEMA IF EXISTS ${quoted(schema)} CASCADE`);
    } finally {
      await admin.end();
      await Promise.all(pools.map((p) => p.end()));
    }
  });
  return env;
}

/** An event to append: no headers and no checks unless given. */
export function outgoing(subject: string, extra: Partial<OutgoingEvent> = {}): OutgoingEvent {
  return {
    subject,
    payload: new TextEncoder().encode(`payload of ${subject}`),
    headers: [],
    idempotencyKey: undefined,
    expectedLastId: undefined,
    expectedLastSubjectId: undefined,
    ...extra,
  };
}

/** Append options with a generous timeout. */
export const APPEND = Object.freeze({ timeoutMs: 10_000, signal: undefined });
