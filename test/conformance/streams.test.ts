import { expect, it } from "vitest";
import { TestEventSchema } from "../../gen/windshift/test/v1/events_pb.js";
import { ErrorCode, isWindshiftError, type WindshiftError } from "../../src/index.js";
import { describeEngines, type EngineEnv, nextOf, uniqueName } from "./harness.js";
import { publishN, storedCount, storedEvents, windshiftError } from "./support.js";

/** The events stored in `stream`, oldest first, as [id, subject, text], once at least `atLeast` are there. */
async function stored(env: EngineEnv, stream: string, atLeast = 0): Promise<[number, string, string][]> {
  const events = await storedEvents(env, stream, { schema: TestEventSchema, atLeast });
  return events.map((event) => [event.id, event.subject, event.data.text]);
}

/** Whether stream `name` exists: a consumer can be made on it (NOT_FOUND when it is missing). */
async function streamExists(env: EngineEnv, name: string): Promise<boolean> {
  return env.events.ensureConsumer(name, { name: "probe" }).then(
    () => true,
    (err: unknown) => {
      if (isWindshiftError(err, ErrorCode.NotFound)) return false;
      throw err;
    },
  );
}

/** What a stream's config holds for the options left out. */
const DEFAULTS = {
  discardPolicy: "old",
  discardNewPerSubject: false,
  storage: "file",
  replicas: 1,
  deduplicationWindowMs: 120_000,
} as const;

describeEngines("ensureStream: configuration", (env) => {
  it("echoes every option back as given", async () => {
    const s = uniqueName();
    const options = {
      subjects: [`${s}.a.>`, `${s}.b`],
      maxAgeMs: 3_600_000,
      maxEvents: 1_000,
      maxEventsPerSubject: 10,
      maxBytes: 1_048_576,
      discardPolicy: "new",
      discardNewPerSubject: true,
      storage: "memory",
      replicas: 1,
      deduplicationWindowMs: 30_000,
      maxEventSize: 4_096,
    } as const;
    const result = await env.events.ensureStream(s, options);
    expect(result.name).toBe(s);
    expect(result.created).toBe(true);
    expect(result.config).toEqual(options);
  });

  it("applies the defaults: file storage, 1 replica, 2 min dedupe window, discard old, no limits", async () => {
    const s = uniqueName();
    const result = await env.events.ensureStream(s, { subjects: [`${s}.>`] });
    expect(result).toEqual({
      name: s,
      created: true,
      config: { subjects: [`${s}.>`], ...DEFAULTS },
    });
  });

  it("is idempotent: a second identical call reports created: false and keeps the events", async () => {
    const s = uniqueName();
    const options = { subjects: [`${s}.>`], maxEvents: 50, maxAgeMs: 600_000 };
    const first = await env.events.ensureStream(s, options);
    await env.events.publish(`${s}.x`, TestEventSchema, { text: "kept" });
    const second = await env.events.ensureStream(s, options);
    expect(first.created).toBe(true);
    expect(second.created).toBe(false);
    expect(second.config).toEqual(first.config);
    expect(await stored(env, s)).toEqual([[1, `${s}.x`, "kept"]]);
  });

  it("updates an existing stream: new maxAgeMs and subjects, old events kept", async () => {
    const s = uniqueName();
    await env.events.ensureStream(s, { subjects: [`${s}.a`], maxAgeMs: 600_000 });
    await env.events.publish(`${s}.a`, TestEventSchema, { text: "before" });
    const updated = await env.events.ensureStream(s, { subjects: [`${s}.a`, `${s}.b.*`], maxAgeMs: 1_200_000 });
    expect(updated.created).toBe(false);
    expect(updated.config.subjects).toEqual([`${s}.a`, `${s}.b.*`]);
    expect(updated.config.maxAgeMs).toBe(1_200_000);
    // The new subject is captured, and the old event is still there.
    const published = await env.events.publish(`${s}.b.1`, TestEventSchema, { text: "after" });
    expect(published).toEqual({ id: 2, stream: s, duplicate: false });
    expect(await stored(env, s)).toEqual([
      [1, `${s}.a`, "before"],
      [2, `${s}.b.1`, "after"],
    ]);
  });

  it("accepts a maxAgeMs shorter than the default 2-minute dedupe window", async () => {
    // nats-server refuses duplicate_window > max_age; a default must not turn a valid maxAgeMs into a failure.
    const s = uniqueName();
    const result = await env.events.ensureStream(s, { subjects: [`${s}.>`], maxAgeMs: 60_000 });
    expect(result.config.maxAgeMs).toBe(60_000);
    expect(result.config.deduplicationWindowMs).toBeGreaterThan(0);
    expect(result.config.deduplicationWindowMs).toBeLessThanOrEqual(60_000);
  });

  it("reverts options left out of an update to their defaults", async () => {
    const s = uniqueName();
    await env.events.ensureStream(s, {
      subjects: [`${s}.>`],
      maxAgeMs: 600_000,
      maxEvents: 10,
      maxEventsPerSubject: 5,
      maxBytes: 100_000,
      discardPolicy: "new",
      deduplicationWindowMs: 10_000,
      maxEventSize: 2_048,
    });
    const updated = await env.events.ensureStream(s, { subjects: [`${s}.>`] });
    expect(updated).toEqual({
      name: s,
      created: false,
      config: { subjects: [`${s}.>`], ...DEFAULTS },
    });
  });

  it("a subject belongs to one stream: a second stream with overlapping subjects is refused", async () => {
    const owner = uniqueName();
    const other = uniqueName();
    await env.events.ensureStream(owner, { subjects: [`${owner}.>`] });
    for (const subjects of [[`${owner}.a`], [`${owner}.*`], [`${other}.x`, `${owner}.a.b`]]) {
      const err = await windshiftError(env.events.ensureStream(other, { subjects }));
      expect(err.code).toBe(ErrorCode.Server);
      expect(err.message).toMatch(/overlap/i);
    }
    expect(await streamExists(env, other)).toBe(false);
    // The owner still captures the subject.
    expect(await env.events.publish(`${owner}.a`, TestEventSchema, {})).toEqual({
      id: 1,
      stream: owner,
      duplicate: false,
    });
    // Subjects that do not overlap are fine.
    const created = await env.events.ensureStream(other, { subjects: [`${other}.>`] });
    expect(created.created).toBe(true);
  });
});

describeEngines("ensureStream: sources", (env) => {
  /**
   * A test of sources, where the engine has them; where it has none
   * (PostgreSQL), the stream with a source is refused with SERVER naming
   * sources, and not created.
   */
  const sourcing = (title: string, test: () => Promise<void>) =>
    it(title, async () => {
      if (env.caps.sources) return test();
      const origin = uniqueName("origin");
      const copy = uniqueName("copy");
      await env.events.ensureStream(origin, { subjects: [`${origin}.>`] });
      const err = await windshiftError(env.events.ensureStream(copy, { sources: [{ stream: origin }] }));
      expect(err.code).toBe(ErrorCode.Server);
      expect(err.message).toMatch(/does not support sources/);
      expect(await streamExists(env, copy)).toBe(false);
    });

  sourcing("copies every event of another stream, then each new one", async () => {
    const origin = uniqueName("origin");
    const copy = uniqueName("copy");
    await env.events.ensureStream(origin, { subjects: [`${origin}.>`] });
    await publishN(env.events, `${origin}.a`, 3);
    const result = await env.events.ensureStream(copy, { sources: [{ stream: origin }] });
    expect(result.created).toBe(true);
    expect(result.config.subjects).toEqual([]);
    expect(result.config.sources).toEqual([{ stream: origin, from: { start: true } }]);
    expect(await stored(env, copy, 3)).toEqual([
      [1, `${origin}.a`, "e0"],
      [2, `${origin}.a`, "e1"],
      [3, `${origin}.a`, "e2"],
    ]);
    await env.events.publish(`${origin}.b`, TestEventSchema, { text: "late" });
    expect(await stored(env, copy, 4)).toEqual([
      [1, `${origin}.a`, "e0"],
      [2, `${origin}.a`, "e1"],
      [3, `${origin}.a`, "e2"],
      [4, `${origin}.b`, "late"],
    ]);
  });

  sourcing("copies from an id, only the filtered subject", async () => {
    const origin = uniqueName("origin");
    const copy = uniqueName("copy");
    await env.events.ensureStream(origin, { subjects: [`${origin}.>`] });
    for (const sub of ["x", "y", "x", "y", "x"]) {
      await env.events.publish(`${origin}.${sub}`, TestEventSchema, { text: sub });
    }
    const result = await env.events.ensureStream(copy, {
      sources: [{ stream: origin, from: { id: 2 }, subjects: [`${origin}.x`] }],
    });
    expect(result.config.sources).toEqual([{ stream: origin, from: { id: 2 }, subjects: [`${origin}.x`] }]);
    // Copies keep the source's order: once this one is there, everything before it is.
    await env.events.publish(`${origin}.y`, TestEventSchema, { text: "not copied" });
    await env.events.publish(`${origin}.x`, TestEventSchema, { text: "last" });
    // Ids 3 and 5 are x at or after id 2; id 1 (x, before) and the y events are not copied.
    expect(await stored(env, copy, 3)).toEqual([
      [1, `${origin}.x`, "x"],
      [2, `${origin}.x`, "x"],
      [3, `${origin}.x`, "last"],
    ]);
  });

  sourcing("copies from a time", async () => {
    const origin = uniqueName("origin");
    const copy = uniqueName("copy");
    await env.events.ensureStream(origin, { subjects: [`${origin}.>`] });
    await env.events.publish(`${origin}.a`, TestEventSchema, { text: "old" });
    await env.elapse(25);
    const cutoff = new Date(env.now());
    await env.elapse(25);
    await env.events.publish(`${origin}.a`, TestEventSchema, { text: "new1" });
    await env.events.publish(`${origin}.a`, TestEventSchema, { text: "new2" });
    const result = await env.events.ensureStream(copy, { sources: [{ stream: origin, from: { time: cutoff } }] });
    expect(result.config.sources).toEqual([{ stream: origin, from: { time: cutoff } }]);
    await env.events.publish(`${origin}.a`, TestEventSchema, { text: "new3" });
    expect(await stored(env, copy, 3)).toEqual([
      [1, `${origin}.a`, "new1"],
      [2, `${origin}.a`, "new2"],
      [3, `${origin}.a`, "new3"],
    ]);
  });
});

describeEngines("ensureStream: failures", (env) => {
  it("an update the engine refuses (changing storage) fails with SERVER and the reason", async () => {
    const s = uniqueName();
    await env.events.ensureStream(s, { subjects: [`${s}.>`] });
    const err = await windshiftError(env.events.ensureStream(s, { subjects: [`${s}.>`], storage: "memory" }));
    expect(err.code).toBe(ErrorCode.Server);
    expect(isWindshiftError(err, ErrorCode.Server)).toBe(true);
    expect(err.message).toMatch(/storage type/i);
    expect(err.message).toContain(s);
    // Still file storage: the same update with it is accepted.
    const again = await env.events.ensureStream(s, { subjects: [`${s}.>`], storage: "file" });
    expect(again).toMatchObject({ created: false, config: { storage: "file" } });
  });

  it("3 replicas: held where there is replication, refused with SERVER on a single server", async () => {
    const s = uniqueName();
    const ensuring = env.events.ensureStream(s, { subjects: [`${s}.>`], replicas: 3 });
    if (env.caps.replication) {
      expect((await ensuring).config.replicas).toBe(3);
      expect(await streamExists(env, s)).toBe(true);
    } else {
      const err = await windshiftError(ensuring);
      expect(err.code).toBe(ErrorCode.Server);
      expect(err.message).toMatch(/replicas/i);
      expect(await streamExists(env, s)).toBe(false);
    }
  });

  it("rejects with ABORTED and creates nothing when the signal is already aborted", async () => {
    const s = uniqueName();
    const ac = new AbortController();
    const reason = new Error("shutting down");
    ac.abort(reason);
    const err = await windshiftError(env.events.ensureStream(s, { subjects: [`${s}.>`], signal: ac.signal }));
    expect(err.code).toBe(ErrorCode.Aborted);
    expect(err.cause).toBe(reason);
    expect(await streamExists(env, s)).toBe(false);
  });

  it("a signal that is not aborted does not get in the way", async () => {
    const s = uniqueName();
    const ac = new AbortController();
    const result = await env.events.ensureStream(s, { subjects: [`${s}.>`], signal: ac.signal });
    expect(result.created).toBe(true);
    expect(await streamExists(env, s)).toBe(true);
  });
});

describeEngines("ensureStream: limits", (env) => {
  it("maxEventsPerSubject: 1 keeps only the last event of each subject", async () => {
    const s = uniqueName();
    await env.events.ensureStream(s, { subjects: [`${s}.>`], maxEventsPerSubject: 1 });
    await env.events.publish(`${s}.a`, TestEventSchema, { text: "a1" });
    await env.events.publish(`${s}.a`, TestEventSchema, { text: "a2" });
    await env.events.publish(`${s}.b`, TestEventSchema, { text: "b1" });
    await env.events.publish(`${s}.a`, TestEventSchema, { text: "a3" });
    expect(await stored(env, s)).toEqual([
      [3, `${s}.b`, "b1"],
      [4, `${s}.a`, "a3"],
    ]);
  });

  it("maxEventsPerSubject with discardPolicy new (not per subject) still drops the subject's oldest", async () => {
    const s = uniqueName();
    await env.events.ensureStream(s, { subjects: [`${s}.>`], maxEventsPerSubject: 2, discardPolicy: "new" });
    for (const text of ["a1", "a2", "a3"]) await env.events.publish(`${s}.a`, TestEventSchema, { text });
    expect(await stored(env, s)).toEqual([
      [2, `${s}.a`, "a2"],
      [3, `${s}.a`, "a3"],
    ]);
  });

  it("discardPolicy new with maxEvents refuses the next publish with SERVER", async () => {
    const s = uniqueName();
    await env.events.ensureStream(s, { subjects: [`${s}.>`], maxEvents: 2, discardPolicy: "new" });
    await publishN(env.events, `${s}.a`, 2);
    const err = await windshiftError(env.events.publish(`${s}.a`, TestEventSchema, { text: "one too many" }));
    expect(err.code).toBe(ErrorCode.Server);
    expect(err.message).toMatch(/maximum messages/i);
    // Another subject is refused too: the limit is the stream's.
    const other = await windshiftError(env.events.publish(`${s}.b`, TestEventSchema, { text: "elsewhere" }));
    expect(other.code).toBe(ErrorCode.Server);
    expect(await stored(env, s)).toEqual([
      [1, `${s}.a`, "e0"],
      [2, `${s}.a`, "e1"],
    ]);
  });

  it("discardPolicy new: an event that replaces one at its subject's limit goes in even when the stream is full", async () => {
    // nats-server: a subject at maxEventsPerSubject drops its oldest to make room, so maxEvents is not exceeded.
    const s = uniqueName();
    await env.events.ensureStream(s, {
      subjects: [`${s}.>`],
      maxEvents: 2,
      maxEventsPerSubject: 1,
      discardPolicy: "new",
    });
    await env.events.publish(`${s}.a`, TestEventSchema, { text: "a1" });
    await env.events.publish(`${s}.b`, TestEventSchema, { text: "b1" });
    const a2 = await env.events.publish(`${s}.a`, TestEventSchema, { text: "a2" });
    expect(a2.id).toBe(3);
    expect((await windshiftError(env.events.publish(`${s}.c`, TestEventSchema, { text: "c1" }))).code).toBe(
      ErrorCode.Server,
    );
    expect(await stored(env, s)).toEqual([
      [2, `${s}.b`, "b1"],
      [3, `${s}.a`, "a2"],
    ]);
  });

  it("discardPolicy old with maxEvents drops the oldest events", async () => {
    const s = uniqueName();
    await env.events.ensureStream(s, { subjects: [`${s}.>`], maxEvents: 2 });
    await publishN(env.events, `${s}.a`, 4);
    expect(await stored(env, s)).toEqual([
      [3, `${s}.a`, "e2"],
      [4, `${s}.a`, "e3"],
    ]);
  });

  it("discardNewPerSubject refuses a new event only on the full subject", async () => {
    const s = uniqueName();
    await env.events.ensureStream(s, {
      subjects: [`${s}.>`],
      maxEventsPerSubject: 1,
      discardPolicy: "new",
      discardNewPerSubject: true,
    });
    await env.events.publish(`${s}.a`, TestEventSchema, { text: "a1" });
    const err = await windshiftError(env.events.publish(`${s}.a`, TestEventSchema, { text: "a2" }));
    expect(err.code).toBe(ErrorCode.Server);
    expect(err.message).toMatch(/maximum messages per subject/i);
    const b = await env.events.publish(`${s}.b`, TestEventSchema, { text: "b1" });
    expect(b.id).toBe(2);
    expect(await stored(env, s)).toEqual([
      [1, `${s}.a`, "a1"],
      [2, `${s}.b`, "b1"],
    ]);
  });

  it("maxEventSize refuses a larger event and accepts a smaller one", async () => {
    const s = uniqueName();
    // nats-server counts headers too, so leave room for windshift's.
    await env.events.ensureStream(s, { subjects: [`${s}.>`], maxEventSize: 1_024 });
    const err = await windshiftError(
      env.events.publish(`${s}.a`, TestEventSchema, { blob: new Uint8Array(2_000).fill(1), text: "big" }),
    );
    expect(err.code).toBe(ErrorCode.Server);
    expect(err.message).toMatch(/size/i);
    const small = await env.events.publish(`${s}.a`, TestEventSchema, { text: "small" });
    expect(small.id).toBe(1);
    expect(await stored(env, s)).toEqual([[1, `${s}.a`, "small"]]);
  });

  it("maxBytes with discardPolicy old keeps the stream under the limit by dropping the oldest", async () => {
    const s = uniqueName();
    await env.events.ensureStream(s, { subjects: [`${s}.>`], maxBytes: 1_000 });
    for (let i = 0; i < 10; i++) {
      await env.events.publish(`${s}.a`, TestEventSchema, { blob: new Uint8Array(200).fill(i), text: `e${i}` });
    }
    const ids = (await stored(env, s)).map(([id]) => id);
    // Each event holds over 200 bytes, so at most 4 fit in 1,000; the newest are the ones kept.
    expect(ids.length).toBeGreaterThan(0);
    expect(ids.length).toBeLessThanOrEqual(4);
    expect(ids).toEqual(Array.from({ length: ids.length }, (_, i) => 10 - ids.length + 1 + i));
  });

  it("maxBytes with discardPolicy new refuses what does not fit and keeps what is there", async () => {
    const s = uniqueName();
    await env.events.ensureStream(s, { subjects: [`${s}.>`], maxBytes: 1_000, discardPolicy: "new" });
    const accepted: number[] = [];
    let err: WindshiftError | undefined;
    for (let i = 0; i < 10 && err === undefined; i++) {
      const publishing = env.events.publish(`${s}.a`, TestEventSchema, { blob: new Uint8Array(200), text: `e${i}` });
      await publishing.then(
        (r) => accepted.push(r.id),
        (e: WindshiftError) => {
          err = e;
        },
      );
    }
    expect(err?.code).toBe(ErrorCode.Server);
    expect(err?.message).toMatch(/maximum bytes/i);
    expect(accepted.length).toBeGreaterThan(0);
    expect(accepted.length).toBeLessThanOrEqual(4);
    expect((await stored(env, s)).map(([id]) => id)).toEqual(accepted);
  });

  it("maxAgeMs removes events once they are older, and consumers never get them", async () => {
    const s = uniqueName();
    await env.events.ensureStream(s, { subjects: [`${s}.>`], maxAgeMs: 300, deduplicationWindowMs: 300 });
    const reader = await env.events.ensureConsumer(s, { name: "late", from: { start: true } });
    const published = env.now();
    await env.events.publish(`${s}.a`, TestEventSchema, { text: "short-lived" });
    await env.elapse(100);
    expect((await env.progress(s, reader.name)).pending).toBe(1);
    await env.eventually(async () => (await storedCount(env, s)) === 0, { what: "the event to expire" });
    expect(env.now() - published).toBeGreaterThanOrEqual(300);
    expect((await env.progress(s, reader.name)).pending).toBe(0);
    // A later event is delivered; the expired one is not.
    await env.events.publish(`${s}.a`, TestEventSchema, { text: "fresh" });
    await using sub = await env.events.subscribe(s, reader.name, { schema: TestEventSchema });
    const event = await nextOf(sub[Symbol.asyncIterator]());
    expect([event.id, event.data.text]).toEqual([2, "fresh"]);
    await event.ack();
  });

  it("deduplicationWindowMs: a repeated key is a duplicate within the window and stored after it", async () => {
    const s = uniqueName();
    const windowMs = 500;
    await env.events.ensureStream(s, { subjects: [`${s}.>`], deduplicationWindowMs: windowMs });
    const key = uniqueName("key");
    const start = env.now();
    const first = await env.events.publish(`${s}.a`, TestEventSchema, { text: "1" }, { idempotencyKey: key });
    const again = await env.events.publish(`${s}.a`, TestEventSchema, { text: "2" }, { idempotencyKey: key });
    expect(first).toEqual({ id: 1, stream: s, duplicate: false });
    expect(again).toEqual({ id: 1, stream: s, duplicate: true });
    await env.elapse(200);
    const stillWithin = await env.events.publish(`${s}.a`, TestEventSchema, { text: "3" }, { idempotencyKey: key });
    expect(stillWithin).toEqual({ id: 1, stream: s, duplicate: true });
    const later = await env.eventually(
      async () => {
        const r = await env.events.publish(`${s}.a`, TestEventSchema, { text: "4" }, { idempotencyKey: key });
        return r.duplicate ? undefined : r;
      },
      { stepMs: 50, what: "the key to leave the window" },
    );
    expect(env.now() - start).toBeGreaterThanOrEqual(windowMs);
    expect(later).toEqual({ id: 2, stream: s, duplicate: false });
    expect(await stored(env, s)).toEqual([
      [1, `${s}.a`, "1"],
      [2, `${s}.a`, "4"],
    ]);
  });
});
