/**
 * `windshift publish`, `tail` and `top` as a user runs them: events
 * published by the SDK and by the CLI, decoded with a descriptor file built
 * by `buf build`; Ctrl-C ends the followers cleanly.
 */
import { create, toJson } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { OrderCreatedSchema, OrderShippedSchema } from "../../gen/windshift/demo/v1/orders_pb.js";
import { uniqueName, waitFor } from "../helpers.js";
import { jsonLines, useCli } from "./support.js";

const env = useCli();

/** A fresh stream capturing `<name>.>`. */
async function stream(): Promise<string> {
  const name = uniqueName("tail");
  await env.events.ensureStream(name, { subjects: [`${name}.>`] });
  return name;
}

/** Waits until `stream` has `count` consumers (tail's ephemeral one). */
function consumers(name: string, count: number) {
  return waitFor(
    async () => {
      const listed = await env.events.listConsumers(name);
      return listed.length === count ? listed : undefined;
    },
    { what: `${count} consumers on ${name}` },
  );
}

describe("windshift publish and tail", () => {
  it("tail --limit decodes the SDK's and the CLI's events, then removes its consumer", async () => {
    const name = await stream();
    const image = await env.descriptors();
    const created = { orderId: "1001", customerId: "ada", items: [{ sku: "tea", quantity: 2, unitPrice: 450n }] };
    await env.events.publish(`${name}.created`, OrderCreatedSchema, created, { idempotencyKey: "order-1001" });
    await env.events.publish(`${name}.shipped`, OrderShippedSchema, { orderId: "1001", carrier: "ups" });
    const data = JSON.stringify({ orderId: "1002", customerId: "bob" });
    const args = ["publish", `${name}.created`, "--type", "windshift.demo.v1.OrderCreated", "--data", data];
    const published = await env.cli([...args, "--descriptors", image, "--key", "order-1002"]);
    expect(published).toEqual({ code: 0, stdout: `published id 3 to ${name}\n`, stderr: "" });
    const again = await env.cli([...args, "--descriptors", image, "--key", "order-1002", "--json"]);
    expect(JSON.parse(again.stdout)).toEqual({ id: 3, stream: name, duplicate: true });

    const [json, text, raw] = await Promise.all([
      env.cli(["tail", name, "--from", "start", "--limit", "3", "--descriptors", image, "--json"]),
      env.cli(["tail", name, "--from", "2", "--limit", "1", "--descriptors", image]),
      env.cli(["tail", name, "--from", "start", "--limit", "1"]),
    ]);
    expect(json.stderr).toBe("");
    expect(json.code).toBe(0);
    expect(jsonLines(json.stdout)).toEqual([
      expect.objectContaining({
        id: 1,
        subject: `${name}.created`,
        type: "windshift.demo.v1.OrderCreated",
        idempotencyKey: "order-1001",
        occurredAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        data: toJson(OrderCreatedSchema, create(OrderCreatedSchema, created)),
        decoded: true,
        headers: expect.objectContaining({ "WS-Data-Type": "windshift.demo.v1.OrderCreated" }),
      }),
      expect.objectContaining({ id: 2, data: { orderId: "1001", carrier: "ups" } }),
      expect.objectContaining({ id: 3, idempotencyKey: "order-1002", data: { orderId: "1002", customerId: "bob" } }),
    ]);
    expect(text).toMatchObject({ code: 0, stderr: "" });
    expect(text.stdout).toMatch(
      new RegExp(
        `^#2 \\S+Z ${name}\\.shipped windshift\\.demo\\.v1\\.OrderShipped \\{"orderId":"1001","carrier":"ups"\\}\\n$`,
      ),
    );
    expect(raw.stdout).toMatch(
      new RegExp(`^#1 \\S+Z ${name}\\.created windshift\\.demo\\.v1\\.OrderCreated key=order-1001 base64:\\S+\\n$`),
    );
    expect(await env.events.listConsumers(name)).toEqual([]);
  });

  it("follows new events on --subject until Ctrl-C, then removes its consumer and exits with 0", async () => {
    const name = await stream();
    const image = await env.descriptors();
    const tail = env.start(["tail", name, "--subject", `${name}.shipped`, "--descriptors", image]);
    await consumers(name, 1);
    await env.events.publish(`${name}.created`, OrderCreatedSchema, { orderId: "1" });
    await env.events.publish(`${name}.shipped`, OrderShippedSchema, { orderId: "1", carrier: "dhl" });
    const line = await tail.waitForLine(/^#\d+ /, "the shipped event");
    expect(line).toMatch(
      new RegExp(
        `^#2 \\S+ ${name}\\.shipped windshift\\.demo\\.v1\\.OrderShipped \\{"orderId":"1","carrier":"dhl"\\}$`,
      ),
    );

    tail.proc.kill("SIGINT");
    expect(await tail.exited).toBe(0);
    expect(tail.stderr()).toBe("");
    expect(tail.lines).toEqual([line]);
    expect((await env.cli(["consumers", name, "--json"])).stdout).toBe("[]\n");
  });
});

describe("windshift top", () => {
  it("appends plain snapshots when not on a terminal, and ends with 0 on Ctrl-C", async () => {
    const name = await stream();
    await env.events.ensureConsumer(name, { name: "billing", from: { start: true } });
    const top = env.start(["top", "--interval", "200"]);
    await top.waitForLine(/^STREAM\s+EVENTS\s+BYTES\s+EVENTS\/S/, "the streams table");
    await top.waitForLine(new RegExp(`^${name}\\s+billing\\s+0\\s+0\\s+0\\s`), "the consumer's row");
    expect(top.lines.join("\n")).not.toContain("\x1b[");
    top.proc.kill("SIGINT");
    expect(await top.exited).toBe(0);
    expect(top.stderr()).toBe("");
  });

  it("--json prints one snapshot per line with rates from the second on, and ends with 0 on SIGTERM", async () => {
    const name = await stream();
    const top = env.start(["top", "--interval", "100", "--json"]);
    await top.waitForLine(/^\{/, "a first snapshot");
    await env.events.publish(`${name}.created`, OrderCreatedSchema, { orderId: "1" });
    const withEvent = await top.waitForLine(
      new RegExp(`"name":"${name}","events":1,.*"eventsPerSecond":\\d`),
      "a rate",
    );
    expect(JSON.parse(withEvent)).toMatchObject({ time: expect.any(String), streams: expect.any(Array) });
    top.proc.kill("SIGTERM");
    expect(await top.exited).toBe(0);
  });
});
