// Subscription behaviour that needs the NATS server itself: raw publishes the
// Events API cannot make, a paused server, a consumer deleted behind the
// subscription's back. Everything else is in test/conformance/.
import { jetstreamManager } from "@nats-io/jetstream";
import { headers as natsHeaders } from "@nats-io/nats-core";
import { describe, expect, it } from "vitest";
import { TestEventSchema } from "../../gen/windshift/test/v1/events_pb.js";
import {
  ErrorCode,
  type Event,
  isWindshiftError,
  type Subscription,
  type SubscriptionStatus,
  type WindshiftError,
} from "../../src/index.js";
import {
  consumerState,
  nextEvent,
  pauseProcess,
  resumeProcess,
  streamWithWorker,
  useServer,
  waitFor,
  windshiftError,
} from "../helpers.js";
import { recordingLogger } from "../log.js";

const env = useServer();

async function publishN(stream: string, n: number, subject = "a"): Promise<void> {
  for (let i = 0; i < n; i++) {
    await env.events.publish(`${stream}.${subject}`, TestEventSchema, { text: `e${i}`, number: BigInt(i) });
  }
}

function iter<T extends Event>(sub: Subscription & AsyncIterable<T>): AsyncIterator<T> {
  return sub[Symbol.asyncIterator]() as AsyncIterator<T>;
}

describe("subscribe on JetStream: raw messages", () => {
  it("surfaces poison events (garbage payload, no type header) without breaking the loop", async () => {
    const { stream, consumer } = await streamWithWorker(env.events, { processingTimeoutMs: 500 });
    await publishN(stream, 1);
    const h = natsHeaders();
    h.set("WS-Data-Type", "windshift.test.v1.TestEvent");
    await env.nc.request(`${stream}.a`, new Uint8Array([0xff, 0xff, 0xff]), { headers: h, timeout: 5_000 });
    await env.nc.request(`${stream}.a`, new Uint8Array([8, 1]));
    await publishN(stream, 1);
    await using sub = await env.events.subscribe(stream, consumer, { schema: TestEventSchema });
    const it = iter(sub);
    const seen: string[] = [];
    for (let i = 0; i < 4; i++) {
      const ev = await nextEvent(it);
      try {
        seen.push(ev.data.text);
        await ev.ack();
      } catch (err) {
        expect(isWindshiftError(err, ErrorCode.InvalidData)).toBe(true);
        seen.push(`poison:${ev.id}:${ev.type || "untyped"}`);
        await ev.reject({ permanent: true });
      }
    }
    expect(seen).toEqual(["e0", "poison:2:windshift.test.v1.TestEvent", "poison:3:untyped", "e0"]);
    // Terminated on the server: nothing is left to redeliver.
    expect(await consumerState(env.nc, stream, consumer)).toMatchObject({ ackFloor: 4, pending: 0, ackPending: 0 });
  });
});

/** One event taken from a subscription of a client whose log is recorded. */
async function oneEventLogged() {
  const logger = recordingLogger();
  const events = await env.client({ logger });
  const { stream, consumer } = await streamWithWorker(env.events);
  await publishN(stream, 1);
  const sub = await events.subscribe(stream, consumer, { schema: TestEventSchema });
  return { logger, sub, ev: await nextEvent(iter(sub)), stream, consumer };
}

describe("subscribe on JetStream: a paused server", () => {
  it("retries a settlement while the server is paused, and succeeds once it resumes", async () => {
    const { logger, sub, ev, stream, consumer } = await oneEventLogged();
    await using _ = sub;
    await pauseProcess(env.server.pid);
    let resumed = false;
    try {
      const acking = ev.ack({ timeoutMs: 100 });
      await waitFor(() => logger.lines.some((l) => l.message === "ack failed, retrying"), { what: "a retry" });
      resumeProcess(env.server.pid);
      resumed = true;
      await acking;
    } finally {
      if (!resumed) resumeProcess(env.server.pid);
    }
    expect(ev.settled).toBe(true);
    expect((await consumerState(env.nc, stream, consumer)).ackPending).toBe(0);
  });

  it("gives up per the retry options and leaves the event unsettled", async () => {
    const { logger, sub, ev, stream, consumer } = await oneEventLogged();
    await using _ = sub;
    await pauseProcess(env.server.pid);
    let err: WindshiftError;
    try {
      err = await windshiftError(ev.ack({ timeoutMs: 50, retry: { maxAttempts: 3, initialDelayMs: 10 } }));
    } finally {
      resumeProcess(env.server.pid);
    }
    expect(err.code).toBe(ErrorCode.Timeout);
    expect(logger.lines.filter((l) => l.message === "ack failed, retrying")).toHaveLength(2);
    expect(ev.settled).toBe(false);
    await ev.ack();
    expect(ev.settled).toBe(true);
    expect((await consumerState(env.nc, stream, consumer)).ackPending).toBe(0);
  });
});

describe("subscribe on JetStream: a consumer deleted on the server", () => {
  it("ends the iteration with NOT_FOUND; closed resolves with that error", async () => {
    const { stream, consumer } = await streamWithWorker(env.events);
    const sub = await env.events.subscribe(stream, consumer, { schema: TestEventSchema });
    const statuses: SubscriptionStatus[] = [];
    const watching = (async () => {
      for await (const s of sub.status()) statuses.push(s);
    })();
    const pending = windshiftError(iter(sub).next());
    const jsm = await jetstreamManager(env.nc);
    await jsm.consumers.delete(stream, consumer);
    const err = await pending;
    expect(err.code).toBe(ErrorCode.NotFound);
    expect(await sub.closed).toBe(err);
    await watching;
    expect(statuses).toEqual(expect.arrayContaining([{ type: "consumer-deleted" }]));
    expect(statuses.at(-1)).toEqual({ type: "closed", error: err });
  }, 60_000);
});
