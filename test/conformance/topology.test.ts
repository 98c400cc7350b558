import { expect, it } from "vitest";
import { ChargeCardSchema } from "../../gen/windshift/demo/v1/checkout_pb.js";
import { ErrorCode, type Topology, workflow } from "../../src/index.js";
import { windshiftError } from "../helpers.js";
import { describeEngines, uniqueName } from "./harness.js";

/** A topology of one stream and two consumers, named after `name`. */
function orders(name: string, overrides: { maxAgeMs?: number; processingTimeoutMs?: number } = {}): Topology {
  return {
    streams: [{ name, subjects: [`${name}.>`], maxAgeMs: overrides.maxAgeMs ?? 3_600_000 }],
    consumers: [
      { stream: name, name: "billing", from: { start: true } },
      {
        stream: name,
        name: "shipping",
        subjects: [`${name}.shipped`],
        processingTimeoutMs: overrides.processingTimeoutMs ?? 30_000,
      },
    ],
  };
}

describeEngines("topology: plan and apply", (env) => {
  it("creates what is declared, then finds nothing to change", async () => {
    const name = uniqueName("topo");
    const topology = orders(name);
    const planned = await env.events.plan(topology);
    expect(planned.changes).toEqual([
      { kind: "stream", name, action: "create" },
      { kind: "consumer", name: "billing", stream: name, action: "create" },
      { kind: "consumer", name: "shipping", stream: name, action: "create" },
    ]);
    await expect(env.events.streamInfo(name)).rejects.toMatchObject({ code: ErrorCode.NotFound });
    expect(await env.events.apply(topology)).toEqual(planned);
    expect((await env.events.streamInfo(name)).config).toMatchObject({ subjects: [`${name}.>`], maxAgeMs: 3_600_000 });
    expect((await env.events.consumerInfo(name, "shipping")).config).toMatchObject({
      subjects: [`${name}.shipped`],
      from: { end: true },
    });
    const again = await env.events.apply(topology);
    expect(again.changes.map((c) => c.action)).toEqual(["unchanged", "unchanged", "unchanged"]);
  });

  it("updates in place, field by field", async () => {
    const name = uniqueName("topo");
    await env.events.apply(orders(name));
    const changed = orders(name, { maxAgeMs: 7_200_000, processingTimeoutMs: 60_000 });
    const planned = await env.events.plan(changed);
    expect(planned.changes).toEqual([
      { kind: "stream", name, action: "update", diff: [{ field: "maxAgeMs", from: 3_600_000, to: 7_200_000 }] },
      { kind: "consumer", name: "billing", stream: name, action: "unchanged" },
      {
        kind: "consumer",
        name: "shipping",
        stream: name,
        action: "update",
        diff: [{ field: "processingTimeoutMs", from: 30_000, to: 60_000 }],
      },
    ]);
    await env.events.apply(changed);
    expect((await env.events.streamInfo(name)).config.maxAgeMs).toBe(7_200_000);
    expect((await env.events.consumerInfo(name, "shipping")).config.processingTimeoutMs).toBe(60_000);
    expect((await env.events.plan(changed)).changes.every((c) => c.action === "unchanged")).toBe(true);
  });

  it("refuses, changing nothing, a plan with a change that cannot be made in place; dryRun changes nothing", async () => {
    const name = uniqueName("topo");
    await env.events.apply(orders(name));
    const other = uniqueName("topo");
    const topology: Topology = {
      streams: [
        { name, subjects: [`${name}.>`], maxAgeMs: 3_600_000, storage: "memory" },
        { name: other, subjects: [`${other}.>`] },
      ],
    };
    const planned = await env.events.plan(topology);
    expect(planned.changes[0]).toEqual({
      kind: "stream",
      name,
      action: "replace",
      diff: [{ field: "storage", from: "file", to: "memory" }],
      reason: "the storage of a stream cannot be changed in place: delete and recreate it (its events are lost)",
    });
    const refused = await windshiftError(env.events.apply(topology));
    expect(refused.code).toBe(ErrorCode.Validation);
    expect(refused.message).toBe(
      `nothing was changed: stream "${name}": the storage of a stream cannot be changed in place: delete and recreate it (its events are lost)`,
    );
    await expect(env.events.streamInfo(other)).rejects.toMatchObject({ code: ErrorCode.NotFound });

    const dry = await env.events.apply(orders(other), { dryRun: true });
    expect(dry.changes.map((c) => c.action)).toEqual(["create", "create", "create"]);
    await expect(env.events.streamInfo(other)).rejects.toMatchObject({ code: ErrorCode.NotFound });
  });

  it("names the path and field of what is wrong in a topology", async () => {
    const message = async (topology: unknown) => {
      const err = await windshiftError(env.events.plan(topology as Topology));
      expect(err.code).toBe(ErrorCode.Validation);
      return err.message;
    };
    const ok = { name: "a", subjects: ["a.>"] };
    expect(await message({ streams: [ok, { name: "b", subjects: ["b.>"], maxAgeMs: -1 }] })).toBe(
      "streams[1].maxAgeMs: -1 is not a whole number of milliseconds between 0 and 9000000000000",
    );
    expect(await message({ streams: [{ ...ok, maxAge: 1 }] })).toBe(
      "streams[0].maxAge: is not a known option; did you mean maxAgeMs?",
    );
    expect(await message({ streams: [{ subjects: ["a.>"] }] })).toBe("streams[0].name: is required");
    expect(await message({ streams: [{ name: "bad name", subjects: ["a.>"] }] })).toContain(
      'streams[0].name: "bad name" is not a valid name',
    );
    expect(await message({ streams: [ok, ok] })).toBe('streams[1].name: "a" is declared twice');
    expect(await message({ consumers: [{ stream: "a" }] })).toBe(
      "consumers[0].name: is required (a topology declares durable consumers)",
    );
    expect(await message({ consumers: [{ name: "c" }] })).toBe("consumers[0].stream: is required");
    expect(await message({ consumers: [{ stream: "a", name: "c", from: { sideways: true } }] })).toContain(
      "consumers[0].from",
    );
    expect(await message({ consumers: [{ stream: uniqueName("none"), name: "c" }] })).toMatch(
      /^consumers\[0\]\.stream: ".+" is neither declared nor an existing stream$/,
    );
    expect(await message({ stream: [] })).toBe('stream: is not "streams" or "consumers"');
    expect(await message({ streams: {} })).toBe("streams: object is not a list");
    expect(await message([])).toBe("topology: object is not an object");
  });
});

describeEngines("topology: prune", (env) => {
  it("deletes undeclared streams and durable consumers only when asked, never buckets or workflow streams", async () => {
    const name = uniqueName("topo");
    await env.events.apply(orders(name));
    const stray = uniqueName("stray");
    await env.events.ensureStream(stray, { subjects: [`${stray}.>`] });
    await env.events.ensureConsumer(name, { name: "old-report" });
    await env.events.idempotent(uniqueName("done"));
    const flow = workflow(uniqueName("wf")).task(ChargeCardSchema, () => {});
    await env.events.ensureWorkflow(flow);

    const kept = orders(name);
    expect((await env.events.plan(kept)).changes.map((c) => c.action)).toEqual(["unchanged", "unchanged", "unchanged"]);
    const pruning = await env.events.plan(kept, { prune: true });
    expect(pruning.changes.filter((c) => c.action === "delete")).toEqual([
      { kind: "consumer", name: "old-report", stream: name, action: "delete" },
      { kind: "stream", name: stray, action: "delete" },
    ]);
    await env.events.apply(kept, { prune: true });
    expect((await env.events.listStreams()).map((s) => s.name).filter((n) => !n.startsWith("KV_"))).toEqual(
      [name, `WORKFLOW_${flow.name}`].sort(),
    );
    // On JetStream a bucket is a stream of its own, and survives the prune.
    if (env.caps.natsServer) expect((await env.events.listStreams()).some((s) => s.name.startsWith("KV_"))).toBe(true);
    expect((await env.events.listConsumers(name)).map((c) => c.name)).toEqual(["billing", "shipping"]);
  });
});
