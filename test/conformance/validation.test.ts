import { beforeAll, describe, expect, it } from "vitest";
import { TestEventSchema } from "../../gen/windshift/test/v1/events_pb.js";
import { ErrorCode, isValidName, isValidSubject, WindshiftError } from "../../src/index.js";
import { describeEngines, type EngineEnv, uniqueName } from "./harness.js";
import {
  BAD_CLIENT_OPTIONS,
  BAD_NAMES,
  BAD_SUBJECTS,
  type Case,
  consumerCases,
  emptyScene,
  expectRejection,
  type Scene,
  setUpScene,
  streamCases,
} from "./validation-cases.js";

// Every bad input fails with a typed error before anything reaches the
// engine. Here "nothing reached it" is read through the engine's own view:
// no stream or consumer appeared, and the consumers of the file's streams
// did not move. test/jetstream/validation.test.ts adds the wire-level proof
// (nothing left the NATS connection).

/** What the file's streams look like to their consumers. */
async function snapshot(env: EngineEnv, scene: Scene) {
  return {
    pub: await env.progress(scene.pubStream, scene.pubWatcher),
    sub: await env.progress(scene.subStream, scene.subConsumer),
  };
}

/** Runs a bad call on a fresh stream name and checks that nothing changed. */
async function expectNothingDone(env: EngineEnv, scene: Scene, c: Case, after: (stream: string) => Promise<void>) {
  const stream = uniqueName();
  const before = await snapshot(env, scene);
  await expectRejection(() => c.run(env.events, stream), c.code ?? ErrorCode.Validation, c.mentions);
  expect(await snapshot(env, scene)).toEqual(before);
  await after(stream);
}

describeEngines("validation: clients, streams and consumers", (env) => {
  const scene = emptyScene();
  beforeAll(() => setUpScene(env.events, scene));

  describe("client options", () => {
    it.each(BAD_CLIENT_OPTIONS)("a client refuses %s", async (_, options, field) => {
      let err: unknown;
      try {
        await env.client(options as never);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(WindshiftError);
      expect((err as WindshiftError).code).toBe(ErrorCode.Validation);
      expect((err as WindshiftError).message).toContain(field);
    });

    it("a client takes console as its logger (control)", async () => {
      await expect(env.client({ logger: console })).resolves.toBeDefined();
    });

    it("a client takes every telemetry option, and works (control)", async () => {
      const client = await env.client({ traceProcessing: "link", recordBodySize: true });
      const stream = uniqueName();
      expect((await client.ensureStream(stream, { subjects: [`${stream}.>`] })).name).toBe(stream);
    });
  });

  describe("ensureStream", () => {
    // The stream a bad call names by mistake would capture `${stream}.a`.
    const nothingCreated = async (stream: string) => {
      await expectRejection(() => env.events.publish(`${stream}.a`, TestEventSchema, {}), ErrorCode.UnboundSubject);
      await expectRejection(() => env.events.ensureConsumer(stream, { name: "probe" }), ErrorCode.NotFound);
    };
    it.each(streamCases().map((c) => [c.name, c] as const))("rejects %s", async (_, c) => {
      await expectNothingDone(env, scene, c, nothingCreated);
    });
  });

  describe("ensureConsumer", () => {
    const noDurable = async () => {
      await expectRejection(() => env.progress(scene.subStream, "ok"), ErrorCode.NotFound);
    };
    it.each(consumerCases(scene).map((c) => [c.name, c] as const))("rejects %s", async (_, c) => {
      await expectNothingDone(env, scene, c, noDurable);
    });
  });

  describe("isValidName and isValidSubject say what the client accepts", () => {
    it.each(BAD_NAMES)("isValidName refuses a name %s", (_, name) => {
      expect(isValidName(name)).toBe(false);
    });
    it.each(["a", "A-z_09", "a".repeat(255)])("isValidName accepts %s, and so does ensureStream", async (name) => {
      expect(isValidName(name)).toBe(true);
      const subject = `${uniqueName()}.>`;
      expect((await env.events.ensureStream(name, { subjects: [subject] })).name).toBe(name);
    });
    it.each(BAD_SUBJECTS)("isValidSubject refuses a subject with %s", (_, subject) => {
      expect(isValidSubject(subject, { wildcards: true })).toBe(false);
      expect(isValidSubject(subject)).toBe(false);
    });
    it.each(["a.*", "a.>", "*", ">", "a.*.c"])("wildcards in %s are allowed only when asked for", (subject) => {
      expect(isValidSubject(subject, { wildcards: true })).toBe(true);
      expect(isValidSubject(subject)).toBe(false);
    });
  });

  describe("boundary values are accepted (controls)", () => {
    it("a 255-character stream name and the longest durations", async () => {
      const name = `${uniqueName()}_${"x".repeat(255)}`.slice(0, 255);
      const created = await env.events.ensureStream(name, {
        subjects: [`${uniqueName()}.>`],
        maxAgeMs: 9_000_000_000_000,
        deduplicationWindowMs: 60_000,
      });
      expect(created.name).toBe(name);
      expect(created.config).toMatchObject({ maxAgeMs: 9_000_000_000_000, deduplicationWindowMs: 60_000 });
    });
  });
});
