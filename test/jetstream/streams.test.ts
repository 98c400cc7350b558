// What only a NATS server shows about ensureStream: the JetStream config it
// writes (snake_case, nanoseconds), source headers as stored, byte counts and
// nats.js error details. The behaviour itself is in test/conformance/streams.test.ts.
import { type JetStreamManager, jetstreamManager } from "@nats-io/jetstream";
import { beforeAll, describe, expect, it } from "vitest";
import { TestEventSchema } from "../../gen/windshift/test/v1/events_pb.js";
import { ErrorCode } from "../../src/index.js";
import { uniqueName, useServer, waitFor, windshiftError } from "../helpers.js";

const env = useServer();
let jsm: JetStreamManager;

beforeAll(async () => {
  jsm = await jetstreamManager(env.nc);
});

const MS = 1_000_000; // nanoseconds per millisecond

describe("ensureStream: the config on the server", () => {
  it("maps every option to the server's config", async () => {
    const s = uniqueName();
    await env.events.ensureStream(s, {
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
    });
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
  });

  it("writes the defaults, and writes them again for options left out of an update", async () => {
    const s = uniqueName();
    const expectDefaults = async (): Promise<void> => {
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
    };
    await env.events.ensureStream(s, { subjects: [`${s}.>`] });
    await expectDefaults();
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
    await env.events.ensureStream(s, { subjects: [`${s}.>`] });
    await expectDefaults();
  });

  it("a second identical call leaves the stream as it was", async () => {
    const s = uniqueName();
    const options = { subjects: [`${s}.>`], maxEvents: 50, maxAgeMs: 600_000 };
    await env.events.ensureStream(s, options);
    const before = await jsm.streams.info(s);
    await env.events.publish(`${s}.x`, TestEventSchema, { text: "kept" });
    await env.events.ensureStream(s, options);
    const after = await jsm.streams.info(s);
    expect(after.created).toEqual(before.created);
    expect(after.config).toEqual(before.config);
    expect(after.state.messages).toBe(1);
  });

  it("an update writes the new subjects and max age", async () => {
    const s = uniqueName();
    await env.events.ensureStream(s, { subjects: [`${s}.a`], maxAgeMs: 600_000 });
    await env.events.ensureStream(s, { subjects: [`${s}.a`, `${s}.b.*`], maxAgeMs: 1_200_000 });
    const { config } = await jsm.streams.info(s);
    expect(config.subjects).toEqual([`${s}.a`, `${s}.b.*`]);
    expect(config.max_age).toBe(1_200_000 * MS);
  });

  it("a maxAgeMs shorter than 2 minutes gets a dedupe window that fits, as reported", async () => {
    const s = uniqueName();
    const result = await env.events.ensureStream(s, { subjects: [`${s}.>`], maxAgeMs: 60_000 });
    const { config } = await jsm.streams.info(s);
    expect(config.max_age).toBe(60_000 * MS);
    expect(config.duplicate_window).toBeGreaterThan(0);
    expect(config.duplicate_window).toBeLessThanOrEqual(60_000 * MS);
    expect(result.config.deduplicationWindowMs).toBe(config.duplicate_window / MS);
  });
});

describe("ensureStream: sources on the server", () => {
  it("a source from the start is written by name", async () => {
    const origin = uniqueName("origin");
    const copy = uniqueName("copy");
    await env.events.ensureStream(origin, { subjects: [`${origin}.>`] });
    await env.events.ensureStream(copy, { sources: [{ stream: origin }] });
    const info = await jsm.streams.info(copy);
    expect(info.config.sources?.map((x) => x.name)).toEqual([origin]);
    expect(info.config.sources?.[0]?.opt_start_seq ?? 0).toBe(0);
    expect(info.config.sources?.[0]?.opt_start_time).toBeUndefined();
  });

  it("a source from an id with a subject is written as opt_start_seq and filter_subject; copies name their origin", async () => {
    const origin = uniqueName("origin");
    const copy = uniqueName("copy");
    await env.events.ensureStream(origin, { subjects: [`${origin}.>`] });
    for (const sub of ["x", "y", "x"]) {
      await env.events.publish(`${origin}.${sub}`, TestEventSchema, { text: sub });
    }
    await env.events.ensureStream(copy, {
      sources: [{ stream: origin, from: { id: 2 }, subjects: [`${origin}.x`] }],
    });
    const source = (await jsm.streams.info(copy)).config.sources?.[0];
    expect(source?.name).toBe(origin);
    expect(source?.opt_start_seq).toBe(2);
    expect(source?.filter_subject).toBe(`${origin}.x`);
    await waitFor(async () => (await jsm.streams.info(copy)).state.messages === 1, { what: "the copy" });
    const copied = await jsm.streams.getMessage(copy, { seq: 1 });
    expect(copied?.header.get("Nats-Stream-Source")).toMatch(new RegExp(`^${origin} 3( |$)`));
  });

  it("a source from a time is written as opt_start_time", async () => {
    const origin = uniqueName("origin");
    const copy = uniqueName("copy");
    await env.events.ensureStream(origin, { subjects: [`${origin}.>`] });
    const cutoff = new Date(Date.now() - 60_000);
    await env.events.ensureStream(copy, { sources: [{ stream: origin, from: { time: cutoff } }] });
    const source = (await jsm.streams.info(copy)).config.sources?.[0];
    expect(new Date(source?.opt_start_time as string).getTime()).toBe(cutoff.getTime());
  });
});

describe("ensureStream: what the server says and keeps", () => {
  it("a refused update carries the JetStream error code and the nats.js error, and changes nothing", async () => {
    const s = uniqueName();
    await env.events.ensureStream(s, { subjects: [`${s}.>`] });
    const err = await windshiftError(env.events.ensureStream(s, { subjects: [`${s}.>`], storage: "memory" }));
    expect(err.code).toBe(ErrorCode.Server);
    expect(typeof err.details.jsErrorCode).toBe("number");
    expect(err.cause).toBeInstanceOf(Error);
    expect((await jsm.streams.info(s)).config.storage).toBe("file");
  });

  it("maxBytes keeps the stored bytes under the limit", async () => {
    const s = uniqueName();
    await env.events.ensureStream(s, { subjects: [`${s}.>`], maxBytes: 1_000 });
    for (let i = 0; i < 10; i++) {
      await env.events.publish(`${s}.a`, TestEventSchema, { blob: new Uint8Array(200).fill(i) });
    }
    const info = await jsm.streams.info(s);
    expect(info.state.bytes).toBeLessThanOrEqual(1_000);
    expect(info.state.messages).toBeGreaterThan(0);
    expect(info.state.last_seq).toBe(10);
  });
});
