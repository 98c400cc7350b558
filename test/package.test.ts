import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { packPackage } from "./pack.js";

const run = promisify(execFile);
const root = fileURLToPath(new URL("..", import.meta.url));

/** The compilers the published types must satisfy: our devDependency, and TypeScript 7 (alias `typescript7`). */
const compilers = [
  { name: "TypeScript 5.9", tsc: join(root, "node_modules", "typescript", "bin", "tsc"), version: /^Version 5\.9\./ },
  { name: "TypeScript 7", tsc: join(root, "node_modules", "typescript7", "bin", "tsc"), version: /^Version 7\./ },
] as const;
const ts7 = compilers[1].tsc;

// A service's program, written against the installed package only. It is
// type-checked with strict settings, then run against a server from
// `windshift/testing`.
const program = `
import { StringValueSchema } from "@bufbuild/protobuf/wkt";
import { connect } from "@nats-io/transport-node";
import { createEvents, ErrorCode, Headers, isWindshiftError, type PublishedEvent } from "windshift";
import { startNatsServer } from "windshift/testing";

const server = await startNatsServer();
try {
  const nc = await connect({ servers: server.url });
  try {
    const events = createEvents(nc);
    const stream = await events.ensureStream("scratch", { subjects: ["scratch.>"] });
    const consumer = await events.ensureConsumer("scratch", { name: "reader", from: { start: true } });
    const first: PublishedEvent = await events.publish("scratch.hello", StringValueSchema, { value: "hello" }, {
      idempotencyKey: "hello-1",
    });
    const again = await events.publish("scratch.hello", StringValueSchema, { value: "hello" }, {
      idempotencyKey: "hello-1",
    });

    let validation = "";
    try {
      await events.ensureStream("not a name", { subjects: ["x"] });
    } catch (err) {
      if (isWindshiftError(err, ErrorCode.Validation)) validation = err.code;
    }

    const received: { id: number; type: string; value: string; key: string | undefined }[] = [];
    {
      await using sub = await events.subscribe("scratch", consumer.name, {
        schema: StringValueSchema,
        signal: AbortSignal.timeout(10_000),
      });
      for await (const event of sub) {
        const value: string = event.data.value;
        received.push({ id: event.id, type: event.type, value, key: event.headers.idempotencyKey });
        await event.ack();
        break;
      }
    }
    console.log(
      JSON.stringify({
        created: stream.created,
        first,
        again,
        validation,
        received,
        dataTypeHeader: Headers.DataType,
      }),
    );
  } finally {
    await nc.close();
  }
} finally {
  await server.stop();
}
`;

const tsconfig = {
  compilerOptions: {
    target: "ES2022",
    lib: ["ES2022", "ESNext.Disposable"],
    module: "NodeNext",
    moduleResolution: "NodeNext",
    strict: true,
    exactOptionalPropertyTypes: true,
    noUncheckedIndexedAccess: true,
    verbatimModuleSyntax: true,
    skipLibCheck: true,
    types: ["node"],
  },
  files: ["main.ts"],
};

// The public API through all three entry points, type-checked only (never
// run): `await using` of the client, a subscription, a processor and a
// workflow worker, typed payloads, and nothing from Node.js, so that it means
// the same with and without @types/node.
const typesProgram = `
import { type StringValue, StringValueSchema } from "@bufbuild/protobuf/wkt";
import {
  createEvents,
  ErrorCode,
  type Events,
  isWindshiftError,
  type Processor,
  router,
  type Subscription,
  workflow,
  type WorkflowWorker,
} from "windshift";
import { createMemoryEvents, createTestClock, type NatsServer, startNatsServer } from "windshift/testing";
import { loadTopology, type Topology } from "windshift/topology";

export function overNats(nc: Parameters<typeof createEvents>[0]): Events {
  return createEvents(nc, { validate: false });
}

export async function scratch(): Promise<string[]> {
  const seen: string[] = [];
  await using events = createMemoryEvents({ clock: createTestClock() });
  await events.ensureStream("scratch", { subjects: ["scratch.>"] });
  await events.ensureConsumer("scratch", { name: "reader", from: { start: true } });
  await events.publish("scratch.hello", StringValueSchema, { value: "hello" }, { idempotencyKey: "hello-1" });
  {
    await using sub: Subscription<StringValue> = await events.subscribe("scratch", "reader", {
      schema: StringValueSchema,
    });
    for await (const event of sub) {
      const value: string = event.data.value;
      // @ts-expect-error the payload is typed: a string is no number
      const wrong: number = event.data.value;
      seen.push(value, String(wrong));
      await event.ack();
      break;
    }
  }
  {
    await using processor: Processor = await events.process(
      "scratch",
      "reader",
      router().on(StringValueSchema, async (message) => {
        seen.push(message.value);
      }),
    );
    await processor.close();
  }
  const flow = workflow("scratch").task(StringValueSchema, async (message) => {
    seen.push(message.value);
  });
  {
    await using worker: WorkflowWorker = await events.runWorkflow(flow, { concurrency: 2 });
    await worker.close();
  }
  try {
    await events.ensureStream("not a name", { subjects: ["x"] });
  } catch (err) {
    if (isWindshiftError(err, ErrorCode.Validation)) seen.push(err.code);
  }
  const topology: Topology = await loadTopology("windshift.yaml");
  for (const stream of topology.streams ?? []) seen.push(stream.name);
  const server: NatsServer = await startNatsServer({ startTimeoutMs: 5_000 });
  await server.stop();
  return seen;
}
`;

// windshift/postgres, run against the test database: the SQL files it applies
// must be in the package, where the build looks for them.
const postgresProgram = `
import { type StringValue, StringValueSchema } from "@bufbuild/protobuf/wkt";
import pg from "pg";
import type { Events, Subscription } from "windshift";
import { createPostgresEvents, ensureSchema, type PostgresEventsOptions } from "windshift/postgres";

const url = process.env.WINDSHIFT_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const schema = \`ws_pack_\${process.pid}\`;
const options: PostgresEventsOptions = { connectionString: url, schema };
const events: Events = createPostgresEvents(options);
try {
  await events.ensureStream("scratch", { subjects: ["scratch.>"] });
  await events.ensureConsumer("scratch", { name: "reader", from: { start: true } });
  const first = await events.publish("scratch.hello", StringValueSchema, { value: "hello" });
  const seen: string[] = [];
  {
    await using sub: Subscription<StringValue> = await events.subscribe("scratch", "reader", {
      schema: StringValueSchema,
    });
    for await (const event of sub) {
      seen.push(event.data.value);
      await event.ack();
      break;
    }
  }
  const pool = new pg.Pool({ connectionString: url });
  const again = await ensureSchema(pool, { schema });
  await pool.end();
  console.log(JSON.stringify({ first, seen, applied: again.applied }));
} finally {
  await events.close();
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  await admin.query(\`DROP SCHEMA IF EXISTS "\${schema}" CASCADE\`);
  await admin.end();
}
`;

// Each subpath on its own: what it needs must come with it.
const testingProgram = `
import { createMemoryEvents, createTestClock } from "windshift/testing";

export async function scratch(): Promise<void> {
  await using events = createMemoryEvents({ clock: createTestClock() });
  await events.ensureStream("scratch", { subjects: ["scratch.>"] });
}
`;
const topologyProgram = `
import { loadTopology } from "windshift/topology";

export async function streams(): Promise<string[]> {
  return ((await loadTopology("windshift.yaml")).streams ?? []).map((s) => s.name);
}
`;

/** Compiler settings the published types must compile under; skipLibCheck is off in all, so the .d.ts files are checked. */
const settings = [
  {
    // TypeScript 5.9: nodenext implies target esnext (its lib has esnext.disposable) and loads every
    // @types package. TypeScript 7: target es2025 (no esnext.disposable), strict, `types: []`.
    name: "the compiler's defaults for an ES module project",
    compilerOptions: { module: "nodenext", skipLibCheck: false, noEmit: true },
  },
  {
    name: "strict settings with @types/node",
    compilerOptions: {
      target: "ES2022",
      lib: ["ES2022", "ESNext.Disposable"],
      module: "NodeNext",
      moduleResolution: "NodeNext",
      types: ["node"],
      strict: true,
      noUncheckedIndexedAccess: true,
      noImplicitOverride: true,
      noImplicitReturns: true,
      noPropertyAccessFromIndexSignature: true,
      noFallthroughCasesInSwitch: true,
      verbatimModuleSyntax: true,
      isolatedModules: true,
      skipLibCheck: false,
      noEmit: true,
    },
  },
  {
    // ES2022's default lib: the DOM (AbortSignal, TextEncoder), no esnext.disposable.
    name: "strict settings without @types/node or esnext.disposable",
    compilerOptions: {
      target: "ES2022",
      module: "NodeNext",
      types: [],
      strict: true,
      skipLibCheck: false,
      noEmit: true,
    },
  },
] as const;
const [, strictSettings, bareSettings] = settings;

/** Runs `tsc -p <config>` in `cwd`; its diagnostics, one string each, and whether it passed. */
async function typeCheck(tsc: string, cwd: string, config: string): Promise<{ ok: boolean; errors: string[] }> {
  const result = await run(process.execPath, [tsc, "-p", config, "--pretty", "false"], {
    cwd,
    maxBuffer: 16 * 1024 * 1024,
  }).then(
    (r) => ({ ok: true, stdout: r.stdout }),
    (err: { stdout?: string; stderr?: string; message: string }) => ({
      ok: false,
      stdout: `${err.stdout ?? ""}${err.stderr ?? ""}` || err.message,
    }),
  );
  // Continuation lines (indented) belong to the diagnostic above them.
  const errors = result.stdout.split(/\n(?=\S)/).filter((line) => line.trim() !== "");
  return { ok: result.ok, errors };
}

/** The lowest Node.js version an `engines.node` range of the form `>=X[.Y[.Z]]` accepts. */
function nodeFloor(range: string, what: string): [number, number, number] {
  const m = /^\s*>=\s*v?(\d+)(?:\.(\d+|x))?(?:\.(\d+|x))?\s*$/.exec(range);
  if (m === null) throw new Error(`${what}: engines.node "${range}" is not of the form >=X.Y.Z; extend nodeFloor`);
  const part = (s: string | undefined) => (s === undefined || s === "x" ? 0 : Number(s));
  return [part(m[1]), part(m[2]), part(m[3])];
}

describe("the packed package", () => {
  const dirs: string[] = [];
  let project = "";
  let files: string[] = [];

  // Packed and installed once; every check below reuses the scratch project.
  beforeAll(async () => {
    const packDir = await mkdtemp(join(tmpdir(), "windshift-pack-"));
    project = await mkdtemp(join(tmpdir(), "windshift-scratch-"));
    dirs.push(packDir, project);

    // `npm pack` runs the `prepack` build, as `npm publish` would.
    const packed = await packPackage(packDir);
    files = [...packed.files];

    await writeFile(
      join(project, "package.json"),
      `${JSON.stringify({ name: "scratch", private: true, type: "module" }, null, 2)}\n`,
    );
    // The @types/node this repository is checked with, so that it comes from npm's cache.
    const typesNode = JSON.parse(await readFile(join(root, "node_modules", "@types", "node", "package.json"), "utf8"))
      .version as string;
    await run(
      "npm",
      [
        "install",
        "--no-audit",
        "--no-fund",
        "--prefer-offline",
        packed.tarball,
        "@nats-io/transport-node",
        "@opentelemetry/api",
        "@bufbuild/protobuf",
        `@types/node@${typesNode}`,
        "pg",
        "@types/pg",
      ],
      { cwd: project, maxBuffer: 16 * 1024 * 1024 },
    );
    await writeFile(join(project, "types.ts"), typesProgram);
    await writeFile(join(project, "testing.ts"), testingProgram);
    await writeFile(join(project, "topology.ts"), topologyProgram);
    await writeFile(join(project, "postgres.ts"), postgresProgram);
  }, 300_000);

  afterAll(async () => {
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  });

  it("ships the build and the LICENSE, and no source maps", async () => {
    expect(files).toEqual(
      expect.arrayContaining([
        "package.json",
        "LICENSE",
        "dist/index.js",
        "dist/index.d.ts",
        "dist/testing/index.js",
        "dist/testing/index.d.ts",
        "dist/topology/index.js",
        "dist/topology/index.d.ts",
        "dist/postgres/index.js",
        "dist/postgres/index.d.ts",
        "sql/postgres/001_streams_and_events.sql",
      ]),
    );
    // Only the build, the PostgreSQL schema and the files npm always ships: no sources, tests or protos.
    expect(
      files.filter(
        (f) =>
          !f.startsWith("dist/") &&
          !/^sql\/postgres\/\d{3}_[a-z0-9_]+\.sql$/.test(f) &&
          !/^(package\.json|README\.md|CHANGELOG\.md|LICENSE)$/.test(f),
      ),
    ).toEqual([]);
    // Maps would point at ../src/*.ts, which is not shipped.
    expect(files.filter((f) => f.endsWith(".map"))).toEqual([]);
    const installed = join(project, "node_modules", "windshift");
    const dist = await readdir(join(installed, "dist"), { recursive: true });
    const mapped: string[] = [];
    for (const file of dist.filter((f) => /\.(js|ts)$/.test(f))) {
      if ((await readFile(join(installed, "dist", file), "utf8")).includes("sourceMappingURL")) mapped.push(file);
    }
    expect(mapped).toEqual([]);

    const pkg = JSON.parse(await readFile(join(installed, "package.json"), "utf8")) as { license: string };
    expect(pkg.license).toBe("Apache-2.0");
    const license = await readFile(join(installed, "LICENSE"), "utf8");
    expect(license).toMatch(/^\s*Apache License\s+Version 2\.0, January 2004\s/);
    expect(license).toContain("END OF TERMS AND CONDITIONS");
  });

  it("claims no Node.js version that a dependency does not", async () => {
    const pkg = JSON.parse(await readFile(join(project, "node_modules", "windshift", "package.json"), "utf8")) as {
      engines: { node: string };
    };
    const floor = nodeFloor(pkg.engines.node, "windshift");
    // Everything installed for windshift, however deep (peers included).
    const { stdout } = await run("npm", ["query", "#windshift *"], { cwd: project, maxBuffer: 16 * 1024 * 1024 });
    const deps = JSON.parse(stdout) as { name: string; version: string; engines?: { node?: string } }[];
    expect(deps.map((d) => d.name)).toEqual(expect.arrayContaining(["@nats-io/nats-core", "@nats-io/nuid"]));
    const stricter = deps.flatMap((d) => {
      const range = d.engines?.node;
      if (range === undefined) return [];
      const theirs = nodeFloor(range, `${d.name}@${d.version}`);
      const i = theirs.findIndex((n, k) => n !== floor[k]);
      return i >= 0 && (theirs[i] ?? 0) > (floor[i] ?? 0) ? [`${d.name}@${d.version} needs node ${range}`] : [];
    });
    expect(stricter, `windshift says node ${pkg.engines.node}`).toEqual([]);
  });

  it("installs into a fresh project and works there", { timeout: 180_000 }, async () => {
    await writeFile(join(project, "main.ts"), program);
    await writeFile(join(project, "tsconfig.json"), JSON.stringify(tsconfig, null, 2));
    const checked = await typeCheck(compilers[0].tsc, project, "tsconfig.json");
    expect(checked.errors, "the scratch program does not type-check against the package").toEqual([]);

    const { stdout } = await run(process.execPath, [join(project, "main.js")], { cwd: project, timeout: 60_000 });
    const lines = stdout.trim().split("\n");
    const result = JSON.parse(lines[lines.length - 1] ?? "null");
    expect(result).toEqual({
      created: true,
      first: { id: 1, stream: "scratch", duplicate: false },
      again: { id: 1, stream: "scratch", duplicate: true },
      validation: "VALIDATION",
      received: [{ id: 1, type: "google.protobuf.StringValue", value: "hello", key: "hello-1" }],
      dataTypeHeader: "WS-Data-Type",
    });
  });

  describe.each(compilers)("its types, under $name", ({ name, tsc, version }) => {
    it("are checked by that very version", async () => {
      const { stdout } = await run(process.execPath, [tsc, "--version"]);
      expect(stdout).toMatch(version);
    });

    it.each(settings)("compile with $name", { timeout: 120_000 }, async (setting) => {
      const config = `tsconfig.${name.replace(/\W+/g, "-")}.${settings.indexOf(setting)}.json`;
      await writeFile(
        join(project, config),
        JSON.stringify({ compilerOptions: setting.compilerOptions, files: ["types.ts"] }, null, 2),
      );
      const checked = await typeCheck(tsc, project, config);
      expect(checked.errors).toEqual([]);
      expect(checked.ok).toBe(true);
    });
  });

  it("runs windshift/postgres against PostgreSQL with the schema files it ships", { timeout: 120_000 }, async () => {
    const config = "tsconfig.postgres.json";
    await writeFile(
      join(project, config),
      JSON.stringify({ compilerOptions: tsconfig.compilerOptions, files: ["postgres.ts"] }, null, 2),
    );
    const checked = await typeCheck(compilers[0].tsc, project, config);
    expect(checked.errors, "the PostgreSQL program does not type-check against the package").toEqual([]);
    const { stdout } = await run(process.execPath, [join(project, "postgres.js")], { cwd: project, timeout: 60_000 });
    const lines = stdout.trim().split("\n");
    expect(JSON.parse(lines[lines.length - 1] ?? "null")).toEqual({
      first: { id: 1, stream: "scratch", duplicate: false },
      seen: ["hello"],
      applied: [],
    });
  });

  it("compile for each subpath imported alone", { timeout: 120_000 }, async () => {
    for (const program of ["testing.ts", "topology.ts", "postgres.ts"]) {
      const config = `tsconfig.alone.${program}.json`;
      await writeFile(
        join(project, config),
        JSON.stringify({ compilerOptions: bareSettings.compilerOptions, files: [program] }, null, 2),
      );
      const checked = await typeCheck(ts7, project, config);
      expect(checked.errors, program).toEqual([]);
    }
  });

  it("compile with exactOptionalPropertyTypes, but for nats.js's own .d.ts", { timeout: 120_000 }, async () => {
    const config = "tsconfig.exact.json";
    await writeFile(
      join(project, config),
      JSON.stringify(
        {
          compilerOptions: { ...strictSettings.compilerOptions, exactOptionalPropertyTypes: true },
          files: ["types.ts"],
        },
        null,
        2,
      ),
    );
    const checked = await typeCheck(ts7, project, config);
    // nats.js's classes implement its interfaces with `x?: T` where the interface says `x: T | undefined`.
    expect(checked.errors.filter((e) => !e.startsWith("node_modules/@nats-io/"))).toEqual([]);
  });
});
