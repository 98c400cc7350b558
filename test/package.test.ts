import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";

const run = promisify(execFile);
const root = fileURLToPath(new URL("..", import.meta.url));
const tsc = join(root, "node_modules", "typescript", "bin", "tsc");

// A service's program, written against the installed package only. It is
// type-checked with strict settings (so the published .d.ts files are
// exercised too), then run against a server from `windshift/testing`.
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
    typeRoots: [join(root, "node_modules", "@types")],
  },
  files: ["main.ts"],
};

describe("the packed package", () => {
  const dirs: string[] = [];
  afterAll(async () => {
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  });

  it("installs into a fresh project and works there", { timeout: 180_000 }, async () => {
    const packDir = await mkdtemp(join(tmpdir(), "windshift-pack-"));
    const project = await mkdtemp(join(tmpdir(), "windshift-scratch-"));
    dirs.push(packDir, project);

    // `npm pack` runs the `prepack` build, as `npm publish` would.
    const packed = await run("npm", ["pack", "--json", "--pack-destination", packDir], {
      cwd: root,
      maxBuffer: 16 * 1024 * 1024,
    });
    const [info] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf("["))) as {
      filename: string;
      files: { path: string }[];
    }[];
    if (info === undefined) throw new Error(`npm pack printed no package: ${packed.stdout}`);
    const files = info.files.map((f) => f.path);
    expect(files).toEqual(
      expect.arrayContaining([
        "package.json",
        "dist/index.js",
        "dist/index.d.ts",
        "dist/testing/index.js",
        "dist/testing/index.d.ts",
      ]),
    );
    // Only the build and the files npm always ships: no sources, tests or protos.
    expect(
      files.filter((f) => !f.startsWith("dist/") && !/^(package\.json|README\.md|CHANGELOG\.md|LICENSE)$/.test(f)),
    ).toEqual([]);

    await writeFile(
      join(project, "package.json"),
      `${JSON.stringify({ name: "scratch", private: true, type: "module" }, null, 2)}\n`,
    );
    await run(
      "npm",
      [
        "install",
        "--no-audit",
        "--no-fund",
        "--prefer-offline",
        join(packDir, info.filename),
        "@nats-io/transport-node",
        "@opentelemetry/api",
        "@bufbuild/protobuf",
      ],
      { cwd: project, maxBuffer: 16 * 1024 * 1024 },
    );

    await writeFile(join(project, "main.ts"), program);
    await writeFile(join(project, "tsconfig.json"), JSON.stringify(tsconfig, null, 2));
    await run(process.execPath, [tsc, "-p", project], { cwd: project }).catch((err: { stdout?: string }) => {
      throw new Error(`the scratch program does not type-check against the package:\n${err.stdout ?? String(err)}`);
    });

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
});
