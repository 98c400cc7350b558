/**
 * The `windshift` CLI's reading commands (streams, consumers, get, workflow
 * show) and dlq replay, as a user runs them.
 */
import { create, toJson } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { ChargeCardSchema } from "../../gen/windshift/demo/v1/checkout_pb.js";
import { OrderCreatedSchema } from "../../gen/windshift/demo/v1/orders_pb.js";
import { handle, PermanentError, workflow } from "../../src/index.js";
import { uniqueName, waitFor } from "../helpers.js";
import { useCli } from "./support.js";

const env = useCli();

describe("windshift streams and consumers", () => {
  it("lists streams and a stream's consumers as tables and as JSON", async () => {
    const name = uniqueName("list");
    await env.events.ensureStream(name, { subjects: [`${name}.>`] });
    await env.events.ensureConsumer(name, { name: "billing", from: { start: true } });
    for (const orderId of ["1", "2", "3"]) {
      await env.events.publish(`${name}.created`, OrderCreatedSchema, { orderId });
    }
    {
      await using sub = await env.events.subscribe(name, "billing", { prefetch: 1 });
      for await (const event of sub) {
        await event.ack();
        break;
      }
    }
    // Closing gave back the event fetched ahead: the consumer's state no longer changes.
    const { state } = await waitFor(
      async () => {
        const info = await env.events.consumerInfo(name, "billing");
        return info.state.lastAckedId === 1 ? info : undefined;
      },
      { what: "the first event acked" },
    );

    const [table, streamsJson, consumers, consumersJson] = await Promise.all([
      env.cli(["streams"]),
      env.cli(["streams", "--json"]),
      env.cli(["consumers", name]),
      env.cli(["consumers", name, "--json"]),
    ]);
    expect(table.code).toBe(0);
    expect(table.stdout.split("\n")[0]).toMatch(/^STREAM\s+SUBJECTS\s+EVENTS\s+BYTES\s+CONSUMERS\s+LAST EVENT$/);
    expect(table.stdout).toMatch(
      new RegExp(`^${name}\\s+${name}\\.>\\s+3\\s+\\d+ B\\s+1\\s+\\d{4}-\\d\\d-\\d\\dT`, "m"),
    );

    const streams = JSON.parse(streamsJson.stdout) as Record<string, unknown>[];
    expect(streams.find((s) => s.name === name)).toMatchObject({
      name,
      subjects: [`${name}.>`],
      events: 3,
      firstId: 1,
      lastId: 3,
      consumers: 1,
      config: { storage: "file" },
    });

    expect(consumers.code).toBe(0);
    expect(consumers.stdout).toMatch(/^CONSUMER\s+LAG\s+UNACKED\s+REDELIVERED\s+LAST DELIVERED\s+LAST ACKED$/m);
    const row = [state.pending, state.unsettled, state.redelivered, state.lastDeliveredId, 1].join("\\s+");
    expect(consumers.stdout).toMatch(new RegExp(`^billing\\s+${row}$`, "m"));
    const json = JSON.parse(consumersJson.stdout) as unknown[];
    expect(json).toEqual([
      expect.objectContaining({
        stream: name,
        name: "billing",
        pending: state.pending,
        unsettled: state.unsettled,
        redelivered: state.redelivered,
        lastDeliveredId: state.lastDeliveredId,
        lastAckedId: 1,
      }),
    ]);
  });
});

describe("windshift get", () => {
  it("prints an event published by the SDK, decoded with --descriptors, else as base64", async () => {
    const name = uniqueName("get");
    await env.events.ensureStream(name, { subjects: [`${name}.>`] });
    const order = { orderId: "1001", customerId: "ada", items: [{ sku: "tea", quantity: 2, unitPrice: 450n }] };
    await env.events.publish(`${name}.created`, OrderCreatedSchema, order, { idempotencyKey: "order-1001" });
    const image = await env.descriptors();

    const [json, text, raw, missing] = await Promise.all([
      env.cli(["get", name, "1", "--descriptors", image, "--json"]),
      env.cli(["get", name, "1", "--descriptors", image]),
      env.cli(["get", name, "1"]),
      env.cli(["get", name, "9"]),
    ]);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({
      id: 1,
      stream: name,
      subject: `${name}.created`,
      type: "windshift.demo.v1.OrderCreated",
      idempotencyKey: "order-1001",
      decoded: true,
      data: toJson(OrderCreatedSchema, create(OrderCreatedSchema, order)),
      headers: { "WS-Data-Type": "windshift.demo.v1.OrderCreated", "Nats-Msg-Id": "order-1001" },
    });

    expect(text.stdout).toMatch(/^type\s+windshift\.demo\.v1\.OrderCreated$/m);
    expect(text.stdout).toMatch(/^key\s+order-1001$/m);
    expect(text.stdout).toContain('"unitPrice": "450"');

    expect(raw.stdout).toMatch(/^data \(base64\)\n {2}\S+$/m);

    expect(missing).toMatchObject({ code: 1, stdout: "" });
    expect(missing.stderr).toMatch(
      /^windshift: stream "\w+" has no event 9 \(never stored, deleted, or removed by a limit\)\n$/,
    );
  });
});

describe("windshift workflow show", () => {
  it("prints a run's tasks and its Mermaid diagram, and --json the run", async () => {
    const flow = workflow(uniqueName("flow")).task(ChargeCardSchema);
    await env.events.ensureWorkflow(flow);
    await env.events.startWorkflow(flow, ChargeCardSchema, { orderId: "1", amount: 5n }, { runId: "order-1" });

    const [text, jsonRun, missing] = await Promise.all([
      env.cli(["workflow", "show", flow.name, "order-1"]),
      env.cli(["workflow", "show", flow.name, "order-1", "--json"]),
      env.cli(["workflow", "show", flow.name, "order-2"]),
    ]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(new RegExp(`^workflow ${flow.name}, run order-1: running$`, "m"));
    expect(text.stdout).toMatch(/^\s+1\s+windshift\.demo\.v1\.ChargeCard\s+scheduled\s+0\s/m);
    expect(text.stdout).toMatch(/^flowchart TD$/m);

    const json = JSON.parse(jsonRun.stdout);
    expect(json).toMatchObject({ runId: "order-1", status: "running", tasks: [{ id: "1", status: "scheduled" }] });
    expect(json.mermaid).toMatch(/^flowchart TD\n/);

    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^windshift: workflow ".*" has no run "order-2"/);
  });
});

describe("windshift dlq replay", () => {
  it("replays dead letters to their subjects, at most --limit of them", async () => {
    const name = uniqueName("dlq");
    await env.events.ensureStream(name, { subjects: [`${name}.>`] });
    await env.events.ensureStream(`${name}_dead`, { subjects: [`dead.${name}`] });
    await env.events.ensureConsumer(name, { name: "worker", from: { start: true } });
    await env.events.publish(`${name}.created`, OrderCreatedSchema, { orderId: "1" });
    await env.events.publish(`${name}.created`, OrderCreatedSchema, { orderId: "2" });
    const processor = await env.events.process(
      name,
      "worker",
      handle(OrderCreatedSchema, () => {
        throw new PermanentError("cannot bill");
      }),
      { deadLetter: { subject: `dead.${name}` } },
    );
    await waitFor(async () => (await env.events.streamInfo(`${name}_dead`)).state.events === 2, {
      what: "two dead letters",
    });
    await processor.close();

    const replay = await env.cli(["dlq", "replay", `${name}_dead`, "--limit", "1", "--json"]);
    expect(replay.stderr).toBe("");
    expect(JSON.parse(replay.stdout)).toEqual({ replayed: 1, duplicates: [], skipped: [] });
    expect((await env.events.streamInfo(name)).state.events).toBe(3);
    expect((await env.events.streamInfo(`${name}_dead`)).state.events).toBe(1);

    const rest = await env.cli(["dlq", "replay", `${name}_dead`]);
    expect(rest).toMatchObject({ code: 0, stdout: `replayed 1 dead letter from ${name}_dead\n` });
  });
});
