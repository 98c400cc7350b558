/** `windshift apply FILE`: plans and applies a topology file, as a user runs it. */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { uniqueName } from "../helpers.js";
import { type CliResult, useCli } from "./support.js";

const env = useCli();

/** Writes `text` to a file of the file's scratch directory; returns its name (relative to it). */
async function file(name: string, text: string): Promise<string> {
  await writeFile(join(env.scratch, name), text);
  return name;
}

/** A topology of one stream `name` (capturing `name.>`) and its durable consumer `billing`. */
function topology(name: string, stream: Record<string, string> = {}, consumer: Record<string, string> = {}): string {
  const extra = (fields: Record<string, string>, indent: string) =>
    Object.entries(fields)
      .map(([k, v]) => `${indent}${k}: ${v}\n`)
      .join("");
  return (
    `streams:\n  - name: ${name}\n    subjects: ["${name}.>"]\n${extra(stream, "    ")}` +
    `consumers:\n  - stream: ${name}\n    name: billing\n    from: { start: true }\n${extra(consumer, "    ")}`
  );
}

describe("windshift apply", () => {
  it("creates, then finds nothing to change, then updates with a field diff", async () => {
    const name = uniqueName("apply");
    const path = await file(`${name}.yaml`, topology(name, { maxAgeMs: "3600000" }));

    const created = await env.cli(["apply", path]);
    expect(created.stderr).toBe("");
    expect(created.code).toBe(0);
    expect(created.stdout).toMatch(new RegExp(`^create\\s+stream\\s+${name}$`, "m"));
    expect(created.stdout).toMatch(new RegExp(`^create\\s+consumer\\s+${name}/billing$`, "m"));
    expect(created.stdout).toMatch(/^applied: 2 created$/m);
    expect((await env.events.streamInfo(name)).config.maxAgeMs).toBe(3_600_000);
    expect((await env.events.consumerInfo(name, "billing")).name).toBe("billing");

    const again = await env.cli(["apply", path, "--json"]);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toEqual({
      changes: [
        { kind: "stream", name, action: "unchanged" },
        { kind: "consumer", name: "billing", stream: name, action: "unchanged" },
      ],
    });

    await file(path, topology(name, { maxAgeMs: "7200000" }, { maxDeliveryAttempts: "5" }));
    const updated = await env.cli(["apply", path]);
    expect(updated.code).toBe(0);
    expect(updated.stdout).toMatch(new RegExp(`^update\\s+stream\\s+${name}\\s+maxAgeMs: 3600000 → 7200000$`, "m"));
    expect(updated.stdout).toMatch(
      new RegExp(`^update\\s+consumer\\s+${name}/billing\\s+maxDeliveryAttempts: default → 5$`, "m"),
    );
    expect(updated.stdout).toMatch(/^applied: 2 updated$/m);
    expect((await env.events.streamInfo(name)).config.maxAgeMs).toBe(7_200_000);
  });

  it("--dry-run prints the plan (and --json its changes) and changes nothing", async () => {
    const name = uniqueName("dry");
    const path = await file(`${name}.yml`, topology(name));
    const [text, json] = await Promise.all([
      env.cli(["apply", path, "--dry-run"]),
      env.cli(["apply", path, "--dry-run", "--json"]),
    ]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(new RegExp(`^create\\s+stream\\s+${name}$`, "m"));
    expect(text.stdout).toMatch(/^dry run: nothing was changed$/m);

    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual({
      changes: [
        { kind: "stream", name, action: "create" },
        { kind: "consumer", name: "billing", stream: name, action: "create" },
      ],
    });
    const missing = await env.cli(["streams", "--json"]);
    expect((JSON.parse(missing.stdout) as { name: string }[]).map((s) => s.name)).not.toContain(name);
  });

  it("deletes what the file does not declare only with --prune", async () => {
    const name = uniqueName("prune");
    const extra = uniqueName("extra");
    await env.events.ensureStream(name, { subjects: [`${name}.>`] });
    await env.events.ensureConsumer(name, { name: "old", from: { start: true } });
    await env.events.ensureStream(extra, { subjects: [`${extra}.>`] });
    const path = await file(`${name}.json`, JSON.stringify({ streams: [{ name, subjects: [`${name}.>`] }] }));

    const kept = await env.cli(["apply", path, "--json"]);
    expect(kept.code).toBe(0);
    const keptChanges = (JSON.parse(kept.stdout) as { changes: { action: string }[] }).changes;
    expect(keptChanges.filter((c) => c.action === "delete")).toEqual([]);
    expect((await env.events.listConsumers(name)).map((c) => c.name)).toEqual(["old"]);

    const pruned = await env.cli(["apply", path, "--prune"]);
    expect(pruned.code).toBe(0);
    expect(pruned.stdout).toMatch(new RegExp(`^delete\\s+consumer\\s+${name}/old$`, "m"));
    expect(pruned.stdout).toMatch(new RegExp(`^delete\\s+stream\\s+${extra}$`, "m"));
    expect(await env.events.listConsumers(name)).toEqual([]);
    expect((await env.events.listStreams()).map((s) => s.name)).not.toContain(extra);
  });

  it("refuses a change of storage, printing the plan, and changes nothing", async () => {
    const name = uniqueName("storage");
    const path = await file(`${name}.yaml`, topology(name));
    expect((await env.cli(["apply", path])).code).toBe(0);
    await file(path, topology(name, { storage: "memory", maxEventSize: "1024" }));

    const refused = await env.cli(["apply", path]);
    expect(refused.code).toBe(1);
    expect(refused.stdout).toMatch(new RegExp(`^replace\\s+stream\\s+${name}\\s+.*storage: "file" → "memory"`, "m"));
    expect(refused.stderr).toMatch(/^windshift: nothing was changed: stream ".*": the storage of a stream cannot/);
    expect(refused.stderr.trim().split("\n")).toHaveLength(1);
    const info = await env.events.streamInfo(name);
    expect(info.config.storage).toBe("file");
    expect(info.config.maxEventSize).toBeUndefined();
  });

  it("names the file, the path and the field of an invalid file, and where a syntax error is", async () => {
    const files = await Promise.all([
      file("invalid.yaml", 'streams:\n  - name: a\n    subjects: ["a.>"]\n    maxAgeMs: soon\n'),
      file("broken.yaml", "streams:\n  - name: a\n    name: b\n"),
      file("broken.json", '{"streams": [{"name": "a",}]}'),
      "nowhere.yaml",
    ]);
    const [wrong, broken, json, missing] = (await Promise.all(files.map((f) => env.cli(["apply", f])))) as [
      CliResult,
      CliResult,
      CliResult,
      CliResult,
    ];
    expect(wrong.code).toBe(1);
    expect(wrong.stdout).toBe("");
    expect(wrong.stderr).toMatch(/^windshift: invalid\.yaml: streams\[0\]\.maxAgeMs: "soon" is not/);
    expect(wrong.stderr.trim().split("\n")).toHaveLength(1);

    expect(broken.stderr).toBe("windshift: broken.yaml:3:5: Map keys must be unique\n");
    expect(json.stderr).toMatch(/^windshift: broken\.json:1:27: /);
    expect(missing).toMatchObject({ code: 1, stderr: "windshift: nowhere.yaml: cannot read the file: no such file\n" });
  });
});
