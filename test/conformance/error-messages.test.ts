/**
 * Errors that say what to do: every message a user meets names the thing,
 * what was expected and what was found, and the fix, in the same words on
 * both engines; `details` carries the same facts for code to read.
 */
import { expect, it } from "vitest";
import { TestEventSchema } from "../../gen/windshift/test/v1/events_pb.js";
import type { Engine } from "../../src/engines/engine.js";
import { ErrorCode } from "../../src/index.js";
import { recordingLogger } from "../log.js";
import { describeEngines, type EngineEnv, uniqueName } from "./harness.js";
import { publishN, windshiftError } from "./support.js";

async function newStream(env: EngineEnv, options: { maxEvents?: number; discardPolicy?: "new" } = {}): Promise<string> {
  const stream = uniqueName();
  await env.events.ensureStream(stream, { subjects: [`${stream}.>`], ...options });
  return stream;
}

describeEngines("error messages: expected ids", (env) => {
  it("a stale expectedLastId names both ids, the stream, and the id to publish with", async () => {
    const s = await newStream(env);
    await publishN(env.events, `${s}.a`, 2);
    const err = await windshiftError(env.events.publish(`${s}.a`, TestEventSchema, {}, { expectedLastId: 1 }));
    expect(err.code).toBe(ErrorCode.WrongSequence);
    expect(err.message).toBe(
      `publish to "${s}.a": expectedLastId 1, but the last id in stream "${s}" is 2: another event was stored first; read it, then publish with expectedLastId 2`,
    );
    expect(err.details).toMatchObject({
      subject: `${s}.a`,
      stream: s,
      option: "expectedLastId",
      expected: 1,
      actual: 2,
    });
  });

  it("an expectedLastId ahead of the stream says which id it has", async () => {
    const s = await newStream(env);
    await publishN(env.events, `${s}.a`, 1);
    const err = await windshiftError(env.events.publish(`${s}.a`, TestEventSchema, {}, { expectedLastId: 5 }));
    expect(err.message).toBe(
      `publish to "${s}.a": expectedLastId 5, but the last id in stream "${s}" is 1; publish with expectedLastId 1`,
    );
    expect(err.details).toMatchObject({ expected: 5, actual: 1 });
  });

  it("a stale expectedLastSubjectId names the subject's last id", async () => {
    const s = await newStream(env);
    await publishN(env.events, `${s}.a`, 1);
    await publishN(env.events, `${s}.b`, 1);
    const err = await windshiftError(env.events.publish(`${s}.b`, TestEventSchema, {}, { expectedLastSubjectId: 0 }));
    expect(err.code).toBe(ErrorCode.WrongSequence);
    expect(err.message).toBe(
      `publish to "${s}.b": expectedLastSubjectId 0, but the last id on "${s}.b" is 2: another event was stored first; read it, then publish with expectedLastSubjectId 2`,
    );
    expect(err.details).toMatchObject({ option: "expectedLastSubjectId", expected: 0, actual: 2 });
  });

  it("with both checks, the one that failed is named (the subject's is checked first)", async () => {
    const s = await newStream(env);
    await publishN(env.events, `${s}.a`, 1);
    await publishN(env.events, `${s}.b`, 1);
    // The subject's check passes (its last id is 2), the stream's fails.
    const stream = await windshiftError(
      env.events.publish(`${s}.b`, TestEventSchema, {}, { expectedLastId: 1, expectedLastSubjectId: 2 }),
    );
    expect(stream.details).toMatchObject({ option: "expectedLastId", expected: 1, actual: 2 });
    // The subject's check fails first.
    const subject = await windshiftError(
      env.events.publish(`${s}.a`, TestEventSchema, {}, { expectedLastId: 2, expectedLastSubjectId: 5 }),
    );
    expect(subject.details).toMatchObject({ option: "expectedLastSubjectId", expected: 5, actual: 1 });
  });
});

describeEngines("error messages: what is missing", (env) => {
  it("subscribe to a missing consumer names it, its stream, and the call that creates it", async () => {
    const s = await newStream(env);
    const err = await windshiftError(env.events.subscribe(s, "billing", { schema: TestEventSchema }));
    expect(err.code).toBe(ErrorCode.NotFound);
    expect(err.message).toBe(
      `consumer "billing" of stream "${s}" not found: create it with ensureConsumer("${s}", { name: "billing" })`,
    );
    expect(err.details).toMatchObject({ stream: s, consumer: "billing" });
  });

  it("process on a missing consumer says the same", async () => {
    const s = await newStream(env);
    const err = await windshiftError(env.events.process(s, "billing", () => {}));
    expect(err.code).toBe(ErrorCode.NotFound);
    expect(err.message).toBe(
      `consumer "billing" of stream "${s}" not found: create it with ensureConsumer("${s}", { name: "billing" })`,
    );
  });

  it("subscribe on a missing stream names the stream, and both calls to make", async () => {
    const s = uniqueName("missing");
    const err = await windshiftError(env.events.subscribe(s, "billing"));
    expect(err.code).toBe(ErrorCode.NotFound);
    expect(err.message).toBe(
      `stream "${s}" not found: create it with ensureStream("${s}", { subjects: [...] }), then its consumer with ensureConsumer("${s}", { name: "billing" })`,
    );
    expect(err.details).toMatchObject({ stream: s, consumer: "billing" });
  });

  it("ensureConsumer, streamInfo and consumerInfo name what is missing", async () => {
    const missing = uniqueName("missing");
    const noStream = `stream "${missing}" not found: create it with ensureStream("${missing}", { subjects: [...] })`;
    expect((await windshiftError(env.events.ensureConsumer(missing, { name: "c" }))).message).toBe(noStream);
    expect((await windshiftError(env.events.streamInfo(missing))).message).toBe(noStream);
    const s = await newStream(env);
    expect((await windshiftError(env.events.consumerInfo(s, "c"))).message).toBe(
      `consumer "c" of stream "${s}" not found: create it with ensureConsumer("${s}", { name: "c" })`,
    );
  });

  it("deleting what is not there says so, and where to look", async () => {
    const s = await newStream(env);
    const consumer = await windshiftError(env.events.deleteConsumer(s, "c"));
    expect(consumer.code).toBe(ErrorCode.NotFound);
    expect(consumer.message).toBe(
      `consumer "c" of stream "${s}" not found; listConsumers("${s}") lists those there are`,
    );
    const missing = uniqueName("missing");
    const stream = await windshiftError(env.events.deleteStream(missing));
    expect(stream.message).toBe(`stream "${missing}" not found; listStreams() lists those there are`);
  });

  it("a missing event names the stream and the id", async () => {
    const s = await newStream(env);
    const err = await windshiftError(env.events.getEvent(s, 9));
    expect(err.code).toBe(ErrorCode.NotFound);
    expect(err.message).toBe(`stream "${s}" has no event 9 (never stored, deleted, or removed by a limit)`);
    expect(err.details).toMatchObject({ stream: s, id: 9 });
  });

  it("a subject no stream captures names a wildcard to add", async () => {
    const prefix = uniqueName("nowhere");
    const err = await windshiftError(env.events.publish(`${prefix}.x`, TestEventSchema, {}));
    expect(err.code).toBe(ErrorCode.UnboundSubject);
    expect(err.message).toBe(
      `no stream captures subject "${prefix}.x": add it (or a wildcard such as "${prefix}.>") to a stream's subjects with ensureStream`,
    );
  });
});

describeEngines("error messages: what the stream refuses", (env) => {
  it("a consumer filter outside the stream names the filter and the stream's subjects", async () => {
    const s = await newStream(env);
    const other = `${uniqueName()}.>`;
    const err = await windshiftError(env.events.ensureConsumer(s, { name: "f", subjects: [other] }));
    expect(err.code).toBe(ErrorCode.Server);
    expect(err.message).toBe(
      `consumer filter "${other}" is not within stream "${s}"'s subjects ("${s}.>"): it could never deliver an event; filter on subjects the stream captures, or add the subject to the stream`,
    );
    expect(err.details).toMatchObject({ stream: s, subject: other, streamSubjects: [`${s}.>`] });
  });

  it("a subject another stream holds names both streams", async () => {
    const a = await newStream(env);
    const b = uniqueName();
    const err = await windshiftError(env.events.ensureStream(b, { subjects: [`${b}.>`, `${a}.x`] }));
    expect(err.code).toBe(ErrorCode.Server);
    expect(err.message).toBe(
      `stream "${b}": subject "${a}.x" overlaps the subjects of stream "${a}": a subject belongs to one stream only; remove it from one of them`,
    );
    expect(err.details).toMatchObject({ stream: b, subject: `${a}.x`, otherStream: a });
  });

  it("two of a stream's own subjects that overlap are named", async () => {
    const s = uniqueName();
    const err = await windshiftError(env.events.ensureStream(s, { subjects: [`${s}.*`, `${s}.a`] }));
    expect(err.code).toBe(ErrorCode.Server);
    expect(err.message).toBe(`stream "${s}": its subjects "${s}.*" and "${s}.a" overlap: keep only the wider one`);
  });

  it("a storage change names both storages and the way out", async () => {
    const s = await newStream(env);
    const err = await windshiftError(env.events.ensureStream(s, { subjects: [`${s}.>`], storage: "memory" }));
    expect(err.code).toBe(ErrorCode.Server);
    expect(err.message).toBe(
      `stream "${s}": the storage type cannot change in place ("file" to "memory"): keep storage: "file", or delete the stream and create it again (its events are lost)`,
    );
  });

  it("a full stream with discardPolicy new names the limit and what to do", async () => {
    const s = await newStream(env, { maxEvents: 1, discardPolicy: "new" });
    await publishN(env.events, `${s}.a`, 1);
    const err = await windshiftError(env.events.publish(`${s}.a`, TestEventSchema, {}));
    expect(err.code).toBe(ErrorCode.Server);
    expect(err.message).toBe(
      `publish to "${s}.a" (stream "${s}"): maximum messages exceeded: the stream is at its maxEvents and discardPolicy "new" refuses more; raise maxEvents, purge it, or use discardPolicy "old"`,
    );
  });
});

describeEngines("error messages: options", (env) => {
  it("an unknown option suggests the one meant", async () => {
    const s = uniqueName();
    const typo = await windshiftError(env.events.ensureStream(s, { subjects: [`${s}.>`], maxAgeMS: 1_000 } as never));
    expect(typo.message).toBe("options.maxAgeMS: is not a known option; did you mean maxAgeMs?");
    expect(typo.details).toEqual({ field: "options.maxAgeMS" });
    const unit = await windshiftError(env.events.ensureConsumer(s, { processingTimeout: 5 } as never));
    expect(unit.message).toBe("options.processingTimeout: is not a known option; did you mean processingTimeoutMs?");
    const far = await windshiftError(env.events.ensureConsumer(s, { durable: "x" } as never));
    expect(far.message).toBe("options.durable: is not a known option");
  });

  it("an old option name says what it was renamed to, for the call at hand", async () => {
    const s = await newStream(env);
    await env.events.ensureConsumer(s, { name: "c" });
    const consumer = await windshiftError(env.events.ensureConsumer(s, { name: "c", maxPendingEvents: 5 } as never));
    expect(consumer.message).toBe(
      "options.maxPendingEvents: is not a known option; it was renamed to maxUnsettledEvents",
    );
    const subscribe = await windshiftError(env.events.subscribe(s, "c", { maxPendingEvents: 5 } as never));
    expect(subscribe.message).toBe("options.maxPendingEvents: is not a known option; it was renamed to prefetch");
  });

  it("a schema passed where options go says how to pass it", async () => {
    const s = await newStream(env);
    await env.events.ensureConsumer(s, { name: "c" });
    const err = await windshiftError(env.events.subscribe(s, "c", TestEventSchema as never));
    expect(err.code).toBe(ErrorCode.Validation);
    expect(err.message).toBe(
      "options: is a message schema (windshift.test.v1.TestEvent), not an options object; pass it as { schema }",
    );
  });

  it("a max age or deduplication window below the server's 100 ms is refused before anything is sent", async () => {
    const s = uniqueName();
    const age = await windshiftError(env.events.ensureStream(s, { subjects: [`${s}.>`], maxAgeMs: 60 }));
    expect(age.code).toBe(ErrorCode.Validation);
    expect(age.message).toBe(
      "maxAgeMs: 60 is below the shortest max age nats-server accepts (100 ms); use 100 or more, or leave it out for no limit",
    );
    const window = await windshiftError(
      env.events.ensureStream(s, { subjects: [`${s}.>`], deduplicationWindowMs: 50 }),
    );
    expect(window.message).toBe(
      "deduplicationWindowMs: 50 is below the shortest window nats-server accepts (100 ms); use 100 or more",
    );
    const longer = await windshiftError(
      env.events.ensureStream(s, { subjects: [`${s}.>`], maxAgeMs: 1_000, deduplicationWindowMs: 2_000 }),
    );
    expect(longer.message).toMatch(/^deduplicationWindowMs: 2000 is longer than maxAgeMs \(1000\): .*use at most 1000/);
    await expect(env.events.streamInfo(s)).rejects.toMatchObject({ code: ErrorCode.NotFound });
    // The minimum itself is accepted by both engines.
    const ok = await env.events.ensureStream(s, { subjects: [`${s}.>`], maxAgeMs: 100, deduplicationWindowMs: 100 });
    expect(ok.config).toMatchObject({ maxAgeMs: 100, deduplicationWindowMs: 100 });
  });
});

describeEngines("error messages: a new consumer at the end of a stream with events", (env) => {
  it("is logged at info with the number of events it skips and how to start from the beginning", async () => {
    const logger = recordingLogger();
    const events = await env.client({ logger });
    const s = await newStream(env);
    await publishN(env.events, `${s}.a`, 3);
    await events.ensureConsumer(s, { name: "late" });
    const notes = logger.lines.filter((l) => l.message.includes("will not see"));
    expect(notes).toEqual([
      {
        level: "info",
        message: `consumer "late" of stream "${s}" starts at the end: it will not see the stream's 3 existing events; to read them, create it with from: { start: true } (delete this one first: an existing consumer keeps its position)`,
        fields: { stream: s, consumer: "late", events: 3 },
      },
    ]);
  });

  it("is not logged from the start, for an existing consumer, an ephemeral one, or an empty stream", async () => {
    const logger = recordingLogger();
    const events = await env.client({ logger });
    const s = await newStream(env);
    const empty = await newStream(env);
    await events.ensureConsumer(empty, { name: "first" });
    await publishN(env.events, `${s}.a`, 2);
    await events.ensureConsumer(s, { name: "all", from: { start: true } });
    await events.ensureConsumer(s);
    await env.events.ensureConsumer(s, { name: "existing" });
    await events.ensureConsumer(s, { name: "existing" });
    expect(logger.lines.filter((l) => l.message.includes("will not see"))).toEqual([]);
  });
});

describeEngines("error messages: key-value revisions", (env) => {
  /** The engine under the harness's client, made anew over the same server or on the same clock. */
  function engineOf(): Engine {
    return env.newEngine();
  }

  it("a stale expectedRevision names the key, the bucket, both revisions and the fix", async () => {
    const engine = engineOf();
    try {
      const bucket = uniqueName("kv");
      const kv = await engine.keyValue(bucket, { mode: "create", options: { ttlMs: 60_000, replicas: 1 } }, undefined);
      const revision = await kv.put("k", new Uint8Array([1]));
      const err = await windshiftError(kv.put("k", new Uint8Array([2]), { expectedRevision: 0 }));
      expect(err.code).toBe(ErrorCode.WrongSequence);
      expect(err.message).toBe(
        `key "k" of bucket "${bucket}": expectedRevision 0, but its revision is ${revision}: it was written since; read it again, then write with its revision`,
      );
      expect(err.details).toMatchObject({ bucket, key: "k", expected: 0, actual: revision });
      const missing = await windshiftError(engine.keyValue(uniqueName("kv"), { mode: "open" }, undefined));
      expect(missing.code).toBe(ErrorCode.NotFound);
      expect(missing.message).toMatch(/^key-value bucket "kv_\w+" not found: it is created by what uses it/);
    } finally {
      await engine.close();
    }
  });
});
