import { jetstreamManager } from "@nats-io/jetstream";
import { expect, it } from "vitest";
import { ChargeCardSchema } from "../../gen/windshift/demo/v1/checkout_pb.js";
import { workflow } from "../../src/index.js";
import { uniqueName, useServer } from "../helpers.js";

const env = useServer();

it("ensureWorkflow creates, then updates, the stream, the bucket and the consumers on the server", async () => {
  const name = uniqueName("wf");
  const flow = workflow(name).task(ChargeCardSchema, () => {});
  const jsm = await jetstreamManager(env.nc);
  const maxAges = async () => ({
    stream: (await jsm.streams.info(`WORKFLOW_${name}`)).config.max_age / 1e6,
    bucket: (await jsm.streams.info(`KV_WORKFLOW_${name}`)).config.max_age / 1e6,
    ackWait:
      ((await jsm.consumers.info(`WORKFLOW_${name}`, "windshift-demo-v1-ChargeCard")).config.ack_wait ?? 0) / 1e6,
  });
  await env.events.ensureWorkflow(flow, { retainMs: 3_600_000, processingTimeoutMs: 5_000 });
  expect(await maxAges()).toEqual({ stream: 3_600_000, bucket: 3_600_000, ackWait: 5_000 });
  // Another client, as another service or a later deploy would.
  const other = await env.client();
  await other.ensureWorkflow(flow, { retainMs: 7_200_000 });
  expect(await maxAges()).toEqual({ stream: 7_200_000, bucket: 7_200_000, ackWait: 30_000 });
  const consumer = await jsm.consumers.info(`WORKFLOW_${name}`, "windshift-demo-v1-ChargeCard");
  expect(consumer.config).toMatchObject({
    durable_name: "windshift-demo-v1-ChargeCard",
    filter_subject: `workflow.${name}.task.windshift.demo.v1.ChargeCard`,
    max_ack_pending: 10_000,
  });
});

it("creates nothing for a workflow that was never ensured: starting a run says to call ensureWorkflow", async () => {
  const name = uniqueName("wf");
  const flow = workflow(name).task(ChargeCardSchema, () => {});
  await expect(env.events.startWorkflow(flow, ChargeCardSchema, { orderId: "1" })).rejects.toMatchObject({
    code: "NOT_FOUND",
    message: `workflow "${name}" is not set up (its bucket WORKFLOW_${name} does not exist): call ensureWorkflow first`,
  });
  const jsm = await jetstreamManager(env.nc);
  const streams = (await jsm.streams.names().next()).filter((s) => s.includes(name));
  expect(streams).toEqual([]);
});
