import { fromBinary } from "@bufbuild/protobuf";
import { type JetStreamManager, jetstreamManager } from "@nats-io/jetstream";
import { beforeAll, describe, expect, it } from "vitest";
import { TestEventSchema } from "../gen/windshift/test/v1/events_pb.js";
import { ErrorCode, isWindshiftError } from "../src/index.js";
import { uniqueName, useServer, waitFor, windshiftError } from "./helpers.js";

const env = useServer();
let jsm: JetStreamManager;

beforeAll(async () => {
  jsm = await jetstreamManager(env.nc);
});

const MS = 1_000_000; // nanoseconds per millisecond

async function streamExists(name: string): Promise<boolean> {
  return jsm.streams.info(name).then(
    () => true,
    (err: unknown) => {
      if (err instanceof Error && err.name === "StreamNotFoundError") return false;
      throw err;
    },
  );
}

async function publishN(subject: string, n: number, text = "e"): Promise<number[]> {
  const ids: number[] = [];
  for (let i = 0; i < n; i++) {
    ids.push((await env.events.publish(subject, TestEventSchema, { text: `${text}${i}` })).id);
  }
  return ids;
}

/** The stored messages of `stream`, in order, as [subject, text]. */
async function stored(stream: string): Promise<[string, string][]> {
  const info = await jsm.streams.info(stream);
  const out: [string, string][] = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
    const m = await jsm.streams.getMessage(stream, { seq });
    if (m !== null) out.push([m.subject, fromBinary(TestEventSchema, m.data).text]);
  }
  return out;
}

describe("ensureStream: configuration on the server", () => {
  it("maps every option to the server's config and echoes it back", async () => {
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
    const { config } = await jsm.streams.info(s);
    expect(config.name).toBe(s);
    expect(config.subjects).toEqual([`${s}.a.>`, `${s}.b`]);
    expect(config.max_age).toBe(3_600_000 * MS);
    expect(config.max_msgs).toBe(1_000);
    expect(config.max_msgs_per_subject).toBe(10);
    expect(config.max_bytes).toBe(1_048_576);
    expect(config.discard).toBe("new");
    expect(config.discard_new_per_subject).toBe(true);
    expect(config.storage).toBe("memory");
    expect(config.num_replicas).toBe(1);
    expect(config.duplicate_window).toBe(30_000 * MS);
    expect(config.max_msg_size).toBe(4_096);

    expect(result.name).toBe(s);
    expect(result.created).toBe(true);
    // Every option comes back as given.
    expect(result.config).toEqual(options);
  });

  it("applies the defaults: file storage, 1 replica, 2 min dedupe window, discard old, no limits", async () => {
    const s = uniqueName();
    const result = await env.events.ensureStream(s, { subjects: [`${s}.>`] });
    const { config } = await jsm.streams.info(s);
    expect(config.storage).toBe("file");
    expect(config.num_replicas).toBe(1);
    expect(config.duplicate_window).toBe(120_000 * MS);
    expect(config.discard).toBe("old");
    expect(config.discard_new_per_subject ?? false).toBe(false);
    expect(config.max_age).toBe(0);
    expect(config.max_msgs).toBe(-1);
    expect(config.max_msgs_per_subject).toBe(-1);
    expect(config.max_bytes).toBe(-1);
    expect(config.max_msg_size).toBe(-1);
    expect(config.sources ?? []).toEqual([]);
    expect(result).toEqual({
      name: s,
      created: true,
      config: {
        subjects: [`${s}.>`],
        discardPolicy: "old",
        discardNewPerSubject: false,
        storage: "file",
        replicas: 1,
        deduplicationWindowMs: 120_000,
      },
    });
  });

  it("is idempotent: a second identical call reports created: false and changes nothing", async () => {
    const s = uniqueName();
    const options = { subjects: [`${s}.>`], maxEvents: 50, maxAgeMs: 600_000 };
    const first = await env.events.ensureStream(s, options);
    const before = await jsm.streams.info(s);
    await env.events.publish(`${s}.x`, TestEventSchema, { text: "kept" });
    const second = await env.events.ensureStream(s, options);
    expect(first.created).toBe(true);
    expect(second.created).toBe(false);
    expect(second.config).toEqual(first.config);
    const after = await jsm.streams.info(s);
    expect(after.created).toEqual(before.created);
    expect(after.config).toEqual(before.config);
    expect(after.state.messages).toBe(1);
  });

  it("updates an existing stream: new maxAgeMs and subjects land on the server", async () => {
    const s = uniqueName();
    await env.events.ensureStream(s, { subjects: [`${s}.a`], maxAgeMs: 600_000 });
    await env.events.publish(`${s}.a`, TestEventSchema, { text: "before" });
    const updated = await env.events.ensureStream(s, { subjects: [`${s}.a`, `${s}.b.*`], maxAgeMs: 1_200_000 });
    expect(updated.created).toBe(false);
    expect(updated.config.subjects).toEqual([`${s}.a`, `${s}.b.*`]);
    expect(updated.config.maxAgeMs).toBe(1_200_000);
    const info = await jsm.streams.info(s);
    expect(info.config.subjects).toEqual([`${s}.a`, `${s}.b.*`]);
    expect(info.config.max_age).toBe(1_200_000 * MS);
    // The new subject is captured, and the old event is still there.
    const published = await env.events.publish(`${s}.b.1`, TestEventSchema, { text: "after" });
    expect(published).toEqual({ id: 2, stream: s, duplicate: false });
    expect(await stored(s)).toEqual([
      [`${s}.a`, "before"],
      [`${s}.b.1`, "after"],
    ]);
  });

  it("accepts a maxAgeMs shorter than the default 2-minute dedupe window", async () => {
    // The server refuses duplicate_window > max_age; a default must not turn a valid
    // maxAgeMs into a failure (the server's own default is min(2 min, max_age)).
    const s = uniqueName();
    const result = await env.events.ensureStream(s, { subjects: [`${s}.>`], maxAgeMs: 60_000 });
    const { config } = await jsm.streams.info(s);
    expect(config.max_age).toBe(60_000 * MS);
    expect(config.duplicate_window).toBeGreaterThan(0);
    expect(config.duplicate_window).toBeLessThanOrEqual(60_000 * MS);
    expect(result.config.maxAgeMs).toBe(60_000);
    expect(result.config.deduplicationWindowMs).toBe(config.duplicate_window / MS);
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
    const { config } = await jsm.streams.info(s);
    expect(config.max_age).toBe(0);
    expect(config.max_msgs).toBe(-1);
    expect(config.max_msgs_per_subject).toBe(-1);
    expect(config.max_bytes).toBe(-1);
    expect(config.discard).toBe("old");
    expect(config.duplicate_window).toBe(120_000 * MS);
    expect(config.max_msg_size).toBe(-1);
    expect(updated).toEqual({
      name: s,
      created: false,
      config: {
        subjects: [`${s}.>`],
        discardPolicy: "old",
        discardNewPerSubject: false,
        storage: "file",
        replicas: 1,
        deduplicationWindowMs: 120_000,
      },
    });
  });
});

describe("ensureStream: sources", () => {
  it("copies every event of another stream", async () => {
    const origin = uniqueName("origin");
    const copy = uniqueName("copy");
    await env.events.ensureStream(origin, { subjects: [`${origin}.>`] });
    await publishN(`${origin}.a`, 3);
    const result = await env.events.ensureStream(copy, { sources: [{ stream: origin }] });
    expect(result.created).toBe(true);
    expect(result.config.subjects).toEqual([]);
    expect(result.config.sources).toEqual([{ stream: origin, from: { start: true } }]);
    const info = await jsm.streams.info(copy);
    expect(info.config.sources?.map((x) => x.name)).toEqual([origin]);
    await waitFor(async () => (await jsm.streams.info(copy)).state.messages === 3, { what: "3 copied events" });
    expect(await stored(copy)).toEqual([
      [`${origin}.a`, "e0"],
      [`${origin}.a`, "e1"],
      [`${origin}.a`, "e2"],
    ]);
    // Events published later are copied too.
    await env.events.publish(`${origin}.b`, TestEventSchema, { text: "late" });
    await waitFor(async () => (await jsm.streams.info(copy)).state.messages === 4, { what: "the late event" });
  });

  it("copies from an id, only the filtered subject", async () => {
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
    const source = (await jsm.streams.info(copy)).config.sources?.[0];
    expect(source?.name).toBe(origin);
    expect(source?.opt_start_seq).toBe(2);
    expect(source?.filter_subject).toBe(`${origin}.x`);
    await waitFor(
      async () => {
        const info = await jsm.streams.info(copy);
        return info.state.messages >= 2 && info.sources?.[0]?.lag === 0;
      },
      { what: "the copy to catch up" },
    );
    // Ids 3 and 5 are x at or after id 2; id 1 (x, before) and the y events are not copied.
    expect(await stored(copy)).toEqual([
      [`${origin}.x`, "x"],
      [`${origin}.x`, "x"],
    ]);
    const copied = await jsm.streams.getMessage(copy, { seq: 1 });
    expect(copied?.header.get("Nats-Stream-Source")).toMatch(new RegExp(`^${origin} 3( |$)`));
  });

  it("copies from a time", async () => {
    const origin = uniqueName("origin");
    const copy = uniqueName("copy");
    await env.events.ensureStream(origin, { subjects: [`${origin}.>`] });
    await env.events.publish(`${origin}.a`, TestEventSchema, { text: "old" });
    const first = await jsm.streams.getMessage(origin, { seq: 1 });
    const cutoff = new Date(Math.floor((first as { time: Date }).time.getTime()) + 1);
    // Both processes share this machine's clock: once it passes the cutoff, later events are stored after it.
    await waitFor(() => Date.now() > cutoff.getTime() + 1, { what: "the clock to pass the cutoff" });
    await env.events.publish(`${origin}.a`, TestEventSchema, { text: "new1" });
    await env.events.publish(`${origin}.a`, TestEventSchema, { text: "new2" });
    const result = await env.events.ensureStream(copy, { sources: [{ stream: origin, from: { time: cutoff } }] });
    expect(result.config.sources).toEqual([{ stream: origin, from: { time: cutoff } }]);
    const source = (await jsm.streams.info(copy)).config.sources?.[0];
    expect(new Date(source?.opt_start_time as string).getTime()).toBe(cutoff.getTime());
    await waitFor(
      async () => {
        const info = await jsm.streams.info(copy);
        return info.state.messages >= 2 && info.sources?.[0]?.lag === 0;
      },
      { what: "the copy to catch up" },
    );
    expect(await stored(copy)).toEqual([
      [`${origin}.a`, "new1"],
      [`${origin}.a`, "new2"],
    ]);
  });
});

describe("ensureStream: failures", () => {
  it("an update the server refuses (changing storage) fails with SERVER and the server's message", async () => {
    const s = uniqueName();
    await env.events.ensureStream(s, { subjects: [`${s}.>`] });
    const err = await windshiftError(env.events.ensureStream(s, { subjects: [`${s}.>`], storage: "memory" }));
    expect(err.code).toBe(ErrorCode.Server);
    expect(isWindshiftError(err, ErrorCode.Server)).toBe(true);
    expect(err.message).toMatch(/storage type/i);
    expect(err.message).toContain(s);
    expect(typeof err.details.jsErrorCode).toBe("number");
    expect(err.cause).toBeInstanceOf(Error);
    expect((await jsm.streams.info(s)).config.storage).toBe("file");
  });

  it("a stream the server refuses to create (3 replicas on a single server) fails with SERVER", async () => {
    const s = uniqueName();
    const err = await windshiftError(env.events.ensureStream(s, { subjects: [`${s}.>`], replicas: 3 }));
    expect(err.code).toBe(ErrorCode.Server);
    expect(err.message).toMatch(/replicas/i);
    expect(await streamExists(s)).toBe(false);
  });

  it("rejects with ABORTED and creates nothing when the signal is already aborted", async () => {
    const s = uniqueName();
    const ac = new AbortController();
    const reason = new Error("shutting down");
    ac.abort(reason);
    const err = await windshiftError(env.events.ensureStream(s, { subjects: [`${s}.>`], signal: ac.signal }));
    expect(err.code).toBe(ErrorCode.Aborted);
    expect(err.cause).toBe(reason);
    expect(await streamExists(s)).toBe(false);
  });

  it("a signal that is not aborted does not get in the way", async () => {
    const s = uniqueName();
    const ac = new AbortController();
    const result = await env.events.ensureStream(s, { subjects: [`${s}.>`], signal: ac.signal });
    expect(result.created).toBe(true);
    expect(await streamExists(s)).toBe(true);
  });
});

describe("ensureStream: limits as the server applies them", () => {
  it("maxEventsPerSubject: 1 keeps only the last event of each subject", async () => {
    const s = uniqueName();
    await env.events.ensureStream(s, { subjects: [`${s}.>`], maxEventsPerSubject: 1 });
    await env.events.publish(`${s}.a`, TestEventSchema, { text: "a1" });
    await env.events.publish(`${s}.a`, TestEventSchema, { text: "a2" });
    await env.events.publish(`${s}.b`, TestEventSchema, { text: "b1" });
    await env.events.publish(`${s}.a`, TestEventSchema, { text: "a3" });
    const info = await jsm.streams.info(s);
    expect(info.state.messages).toBe(2);
    expect(info.state.last_seq).toBe(4);
    expect((await jsm.streams.getMessage(s, { last_by_subj: `${s}.a` }))?.seq).toBe(4);
    expect((await jsm.streams.getMessage(s, { last_by_subj: `${s}.b` }))?.seq).toBe(3);
    expect(await stored(s)).toEqual([
      [`${s}.b`, "b1"],
      [`${s}.a`, "a3"],
    ]);
  });

  it("discardPolicy new with maxEvents refuses the next publish with a typed error", async () => {
    const s = uniqueName();
    await env.events.ensureStream(s, { subjects: [`${s}.>`], maxEvents: 2, discardPolicy: "new" });
    await publishN(`${s}.a`, 2);
    const err = await windshiftError(env.events.publish(`${s}.a`, TestEventSchema, { text: "one too many" }));
    expect(err.code).toBe(ErrorCode.Server);
    expect(err.message).toMatch(/maximum messages/i);
    const info = await jsm.streams.info(s);
    expect(info.state.messages).toBe(2);
    expect(info.state.last_seq).toBe(2);
  });

  it("discardPolicy old with maxEvents drops the oldest events", async () => {
    const s = uniqueName();
    await env.events.ensureStream(s, { subjects: [`${s}.>`], maxEvents: 2 });
    await publishN(`${s}.a`, 4);
    const info = await jsm.streams.info(s);
    expect(info.state.messages).toBe(2);
    expect(info.state.first_seq).toBe(3);
    expect(info.state.last_seq).toBe(4);
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
    expect(await stored(s)).toEqual([
      [`${s}.a`, "a1"],
      [`${s}.b`, "b1"],
    ]);
  });

  it("maxEventSize refuses a larger event and accepts a smaller one", async () => {
    const s = uniqueName();
    // The server counts headers too, so leave room for windshift's.
    await env.events.ensureStream(s, { subjects: [`${s}.>`], maxEventSize: 1_024 });
    const err = await windshiftError(
      env.events.publish(`${s}.a`, TestEventSchema, { blob: new Uint8Array(2_000).fill(1), text: "big" }),
    );
    expect(err.code).toBe(ErrorCode.Server);
    expect(err.message).toMatch(/size/i);
    const small = await env.events.publish(`${s}.a`, TestEventSchema, { text: "small" });
    expect(small.id).toBe(1);
    expect((await jsm.streams.info(s)).state.messages).toBe(1);
  });

  it("maxBytes keeps the stream under the limit by dropping old events", async () => {
    const s = uniqueName();
    await env.events.ensureStream(s, { subjects: [`${s}.>`], maxBytes: 1_000 });
    for (let i = 0; i < 10; i++) {
      await env.events.publish(`${s}.a`, TestEventSchema, { blob: new Uint8Array(200).fill(i) });
    }
    const info = await jsm.streams.info(s);
    expect(info.state.bytes).toBeLessThanOrEqual(1_000);
    expect(info.state.messages).toBeGreaterThan(0);
    expect(info.state.messages).toBeLessThan(10);
    expect(info.state.last_seq).toBe(10);
  });

  it("maxAgeMs removes events once they are older", async () => {
    const s = uniqueName();
    await env.events.ensureStream(s, { subjects: [`${s}.>`], maxAgeMs: 300, deduplicationWindowMs: 300 });
    const published = Date.now();
    await env.events.publish(`${s}.a`, TestEventSchema, { text: "short-lived" });
    expect((await jsm.streams.info(s)).state.messages).toBe(1);
    await waitFor(async () => (await jsm.streams.info(s)).state.messages === 0, { what: "the event to expire" });
    expect(Date.now() - published).toBeGreaterThanOrEqual(300);
  });

  it("deduplicationWindowMs: a repeated key is a duplicate within the window and stored after it", async () => {
    const s = uniqueName();
    const windowMs = 500;
    await env.events.ensureStream(s, { subjects: [`${s}.>`], deduplicationWindowMs: windowMs });
    const key = uniqueName("key");
    const start = Date.now();
    const first = await env.events.publish(`${s}.a`, TestEventSchema, { text: "1" }, { idempotencyKey: key });
    const again = await env.events.publish(`${s}.a`, TestEventSchema, { text: "2" }, { idempotencyKey: key });
    expect(first.duplicate).toBe(false);
    expect(again).toEqual({ id: first.id, stream: s, duplicate: true });
    const later = await waitFor(
      async () => {
        const r = await env.events.publish(`${s}.a`, TestEventSchema, { text: "3" }, { idempotencyKey: key });
        return r.duplicate ? undefined : r;
      },
      { intervalMs: 50, what: "the key to leave the window" },
    );
    expect(Date.now() - start).toBeGreaterThanOrEqual(windowMs);
    expect(later.id).toBe(2);
  });
});
