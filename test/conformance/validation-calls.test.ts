import { beforeAll, describe, expect, it } from "vitest";
import { TestEventSchema } from "../../gen/windshift/test/v1/events_pb.js";
import { ErrorCode } from "../../src/index.js";
import { describeEngines, type EngineEnv, type EngineName, expectQuiet, nextOf, uniqueName } from "./harness.js";
import {
  abortedPublishCase,
  type Case,
  emptyScene,
  expectRejection,
  oversizeCase,
  processCases,
  publishCases,
  type Scene,
  SETTLEMENT_CASES,
  setUpScene,
  subscribeCases,
} from "./validation-cases.js";

// publish, subscribe, process and settlement calls with bad input fail with
// a typed error and change nothing the engine shows: no event stored, none
// delivered, none settled. test/jetstream/validation.test.ts adds the
// wire-level proof (nothing left the NATS connection).

/** The largest payload of each engine as the harness sets it up: nats-server's default max_payload, the memory store's and PostgreSQL client's defaults. */
const MAX_PAYLOAD: Record<EngineName, number> = { jetstream: 1_048_576, memory: 1_048_576, postgres: 1_048_576 };

async function snapshot(env: EngineEnv, scene: Scene) {
  return {
    pub: await env.progress(scene.pubStream, scene.pubWatcher),
    sub: await env.progress(scene.subStream, scene.subConsumer),
  };
}

async function expectNothingDone(env: EngineEnv, scene: Scene, c: Case): Promise<void> {
  const before = await snapshot(env, scene);
  await expectRejection(() => c.run(env.events, uniqueName()), c.code ?? ErrorCode.Validation, c.mentions);
  expect(await snapshot(env, scene)).toEqual(before);
}

describeEngines("validation: publish, subscribe, process and settle", (env) => {
  const scene = emptyScene();
  beforeAll(() => setUpScene(env.events, scene));

  describe("publish", () => {
    it.each(publishCases(scene).map((c) => [c.name, c] as const))("rejects %s", async (_, c) => {
      await expectNothingDone(env, scene, c);
    });

    it("rejects a payload one byte over the engine's largest", async () => {
      await expectNothingDone(env, scene, oversizeCase(scene, MAX_PAYLOAD[env.name]));
    });

    it("rejects with ABORTED, storing nothing, when the signal is already aborted", async () => {
      await expectNothingDone(env, scene, abortedPublishCase(scene));
    });

    it("accepts what the rejections above are measured against (control)", async () => {
      // The same stream and client do store a valid event, so the unchanged counts above mean something.
      const before = await snapshot(env, scene);
      const published = await env.events.publish(
        `${scene.pubStream}.ok`,
        TestEventSchema,
        { text: "x" },
        {
          idempotencyKey: uniqueName("key"),
          expectedLastId: before.pub.pending,
          occurredAt: new Date(),
          timeoutMs: 5_000,
          retry: { maxAttempts: 1 },
        },
      );
      expect(published).toEqual({ id: before.pub.pending + 1, stream: scene.pubStream, duplicate: false });
      expect(await snapshot(env, scene)).toEqual({
        ...before,
        pub: { ...before.pub, pending: before.pub.pending + 1 },
      });
    });
  });

  describe("subscribe", () => {
    it.each(subscribeCases(scene).map((c) => [c.name, c] as const))("rejects %s", async (_, c) => {
      await expectNothingDone(env, scene, c);
    });
  });

  describe("process", () => {
    it.each(processCases(scene).map((c) => [c.name, c] as const))("rejects %s", async (_, c) => {
      await expectNothingDone(env, scene, c);
    });
  });

  describe("event settlement", () => {
    it.each(SETTLEMENT_CASES)("rejects %s, leaving the event unsettled", async (_, call) => {
      const stream = uniqueName("ev");
      await env.events.ensureStream(stream, { subjects: [`${stream}.>`] });
      await env.events.ensureConsumer(stream, { name: "c", from: { start: true } });
      await env.events.publish(`${stream}.a`, TestEventSchema, { text: "settle me" });
      await using sub = await env.events.subscribe(stream, "c", { schema: TestEventSchema, autoPing: false });
      const events = sub[Symbol.asyncIterator]();
      const event = await nextOf(events);
      await expectRejection(() => call(event), ErrorCode.Validation);
      expect(event.settled).toBe(false);
      expect(await env.progress(stream, "c")).toEqual({ ackFloor: 0, unsettled: 1, pending: 0 });
      // Not given back either: nothing is redelivered.
      await expectQuiet(env, events, 50);
      // Still settleable: the failed call changed nothing.
      await event.ack();
      expect(event.settled).toBe(true);
      await env.settled(stream, "c", 1);
    });
  });
});
