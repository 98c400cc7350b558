/**
 * The engine's schema as shipped: the plain SQL files of `sql/postgres/`
 * in the package, read once per process. Their names give their order:
 * `001_streams_and_events.sql` is version 1, named `streams_and_events`.
 *
 * @module
 */

import { readdir, readFile } from "node:fs/promises";
import { ErrorCode, WindshiftError } from "../../errors.js";

/** One migration file. */
export interface Migration {
  /** Its number, from 1, without gaps. */
  readonly version: number;
  /** Its name, as recorded in the schema's `migrations` table. */
  readonly name: string;
  /** The file's name, for messages. */
  readonly file: string;
  /** The SQL to run, with `search_path` set to the target schema. */
  readonly sql: string;
}

/** Where the files are: `sql/postgres/` at the package's root (three levels above this file, in `src/` or `dist/`). */
export const MIGRATIONS_DIRECTORY = new URL("../../../sql/postgres/", import.meta.url);

const FILE_NAME = /^(\d{3})_([a-z0-9_]+)\.sql$/;

let loaded: Promise<readonly Migration[]> | undefined;

/**
 * The migrations, in order (read once per process). Fails with `SERVER` when
 * the folder is missing or its numbering has a gap: the package is broken.
 */
export function loadMigrations(): Promise<readonly Migration[]> {
  loaded ??= readMigrations().catch((err: unknown) => {
    loaded = undefined;
    throw err;
  });
  return loaded;
}

async function readMigrations(): Promise<readonly Migration[]> {
  let files: string[];
  try {
    files = await readdir(MIGRATIONS_DIRECTORY);
  } catch (err) {
    throw broken(`cannot read ${MIGRATIONS_DIRECTORY.pathname}`, err);
  }
  const found = files.flatMap((file) => {
    const m = FILE_NAME.exec(file);
    return m === null ? [] : [{ version: Number(m[1]), name: m[2] as string, file }];
  });
  found.sort((a, b) => a.version - b.version);
  const migrations: Migration[] = [];
  for (const [i, { version, name, file }] of found.entries()) {
    if (version !== i + 1) throw broken(`expected migration ${i + 1}, found ${file}`);
    const sql = await readFile(new URL(file, MIGRATIONS_DIRECTORY), "utf8");
    migrations.push(Object.freeze({ version, name, file, sql }));
  }
  if (migrations.length === 0) throw broken(`no migrations in ${MIGRATIONS_DIRECTORY.pathname}`);
  return Object.freeze(migrations);
}

function broken(problem: string, cause?: unknown): WindshiftError {
  return new WindshiftError(
    ErrorCode.Server,
    `the PostgreSQL schema files shipped with windshift are broken: ${problem}; reinstall windshift`,
    cause === undefined ? {} : { cause },
  );
}
