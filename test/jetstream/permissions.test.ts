// Permissions the server refuses: a user who may not publish to a subject,
// pull from a consumer, ack, call the JetStream API or subscribe to its inbox.
// Each refusal must come back at once as PERMISSION_DENIED naming the subject
// and the operation, never as a timeout, and never be retried; and nothing
// secret used to connect may leak into an error or a log line.
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestEventSchema } from "../../gen/windshift/test/v1/events_pb.js";
import {
  createEvents,
  ErrorCode,
  type Events,
  handle,
  isWindshiftError,
  PermanentError,
  type WindshiftError,
} from "../../src/index.js";
import { type NatsServer, startNatsServer } from "../../src/testing/index.js";
import { nextEvent, uniqueName, waitFor, windshiftError } from "../helpers.js";
import { recordingLogger } from "../log.js";

/** Passwords unlike anything else in a message, so that a leak cannot hide. */
const PASSWORDS = {
  admin: "pw-admin-Zq81xK",
  limited: "pw-limited-Vt42mR",
  noapi: "pw-noapi-Hc57wP",
  noinbox: "pw-noinbox-Ld39sN",
  nopull: "pw-nopull-Qe64tB",
} as const;
type User = keyof typeof PASSWORDS;

// One account with JetStream. `limited` may publish events under orders.>,
// call the JetStream API and ack, but not publish under forbidden.>, not pull
// from any consumer named "locked", not ack through one named "noacks", and
// not create one named "fixed";
// `noapi` may not call the JetStream API at all; `noinbox` may not subscribe
// to inboxes, where replies come; `nopull` may not pull from any consumer.
const CONFIG = `
accounts {
  APP {
    jetstream: enabled
    users: [
      { user: admin, password: "${PASSWORDS.admin}" }
      { user: limited, password: "${PASSWORDS.limited}", permissions: {
          publish: {
            allow: ["orders.>", "$JS.API.>", "$JS.ACK.>"]
            deny: [
              "forbidden.>", "$JS.API.CONSUMER.MSG.NEXT.*.locked", "$JS.ACK.*.noacks.>",
              "$JS.API.CONSUMER.CREATE.*.fixed", "$JS.API.CONSUMER.CREATE.*.fixed.>", "$JS.API.CONSUMER.DURABLE.CREATE.*.fixed"
            ]
          }
          subscribe: { allow: ["_INBOX.>"] }
      } }
      { user: noapi, password: "${PASSWORDS.noapi}", permissions: {
          publish: { allow: ["orders.>"], deny: ["$JS.API.>"] }
          subscribe: { allow: ["_INBOX.>"] }
      } }
      { user: noinbox, password: "${PASSWORDS.noinbox}", permissions: {
          publish: { allow: ["orders.>", "$JS.API.>"] }
          subscribe: { deny: ["_INBOX.>"] }
      } }
      { user: nopull, password: "${PASSWORDS.nopull}", permissions: {
          publish: { allow: [">"], deny: ["$JS.API.CONSUMER.MSG.NEXT.>"] }
      } }
    ]
  }
}
`;

let server: NatsServer;
let admin: Events;
const connections: NatsConnection[] = [];

async function connectAs(user: User): Promise<NatsConnection> {
  const nc = await connect({ servers: server.url, user, pass: PASSWORDS[user] });
  connections.push(nc);
  return nc;
}

/** A client of `user`, with a logger that records what windshift reports. */
async function clientOf(user: User): Promise<{ events: Events; log: ReturnType<typeof recordingLogger> }> {
  const log = recordingLogger();
  return { events: createEvents(await connectAs(user), { logger: log }), log };
}

beforeAll(async () => {
  server = await startNatsServer({ config: CONFIG });
  admin = createEvents(await connectAs("admin"));
});

afterAll(async () => {
  await Promise.all(connections.map((nc) => nc.close().catch(() => {})));
  await server?.stop();
});

/** A stream capturing orders.<name>.> and forbidden.<name>.>, created by the admin. */
async function ordersStream(): Promise<string> {
  const name = uniqueName("perm");
  await admin.ensureStream(name, { subjects: [`orders.${name}.>`, `forbidden.${name}.>`] });
  return name;
}

/** Runs `work` and returns its WindshiftError and how long it took to fail. */
async function timed(work: () => Promise<unknown>): Promise<{ err: WindshiftError; ms: number }> {
  const started = performance.now();
  const err = await windshiftError(work);
  return { err, ms: Math.round(performance.now() - started) };
}

/** Every text windshift could show of an error: its string, its details, its cause chain. */
function everyText(err: unknown): string[] {
  const out: string[] = [];
  for (let e: unknown = err, depth = 0; e !== undefined && e !== null && depth < 10; depth++) {
    out.push(String(e));
    if (e instanceof Error) out.push(e.message, e.stack ?? "");
    try {
      out.push(JSON.stringify(e));
    } catch {
      // not serialisable: String() above is what would be shown
    }
    if (isWindshiftError(e)) out.push(JSON.stringify(e.details));
    e = e instanceof Error ? e.cause : undefined;
  }
  return out;
}

function expectNoPassword(texts: readonly string[]): void {
  for (const text of texts) for (const pw of Object.values(PASSWORDS)) expect(text).not.toContain(pw);
}

// The publish timeout is 30 s and the retry budget 20 s: a test that ends
// within 15 s shows the refusal came back without waiting for either.
describe("publish", { timeout: 15_000 }, () => {
  it("to a forbidden subject fails at once with PERMISSION_DENIED, is not retried, and stores nothing", async () => {
    const stream = await ordersStream();
    const { events, log } = await clientOf("limited");
    const subject = `forbidden.${stream}.created`;

    const { err, ms } = await timed(() =>
      events.publish(subject, TestEventSchema, { text: "x" }, { timeoutMs: 30_000, retry: true }),
    );
    console.log(`denied publish (retry: true) failed after ${ms} ms`);
    expect(err.code).toBe(ErrorCode.PermissionDenied);
    expect(err.message).toContain(`"${subject}"`);
    expect(err.message).toContain("publish");
    expect(err.message).toContain("not stored");
    expect(err.details).toMatchObject({ operation: "publish", subject });
    expect(log.lines.filter((l) => l.message.includes("retrying"))).toEqual([]);

    const plain = await timed(() => events.publish(subject, TestEventSchema, { text: "x" }, { timeoutMs: 30_000 }));
    console.log(`denied publish (no retry) failed after ${plain.ms} ms`);
    expect(plain.err.code).toBe(ErrorCode.PermissionDenied);

    expect((await admin.streamInfo(stream)).state.events).toBe(0);
    // The same client still publishes where it may.
    expect((await events.publish(`orders.${stream}.created`, TestEventSchema, { text: "ok" })).id).toBe(1);
  });

  it("fails only the publishes to the forbidden subject when allowed ones are in flight with them", async () => {
    const stream = await ordersStream();
    const { events } = await clientOf("limited");
    const outcomes = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) =>
        events.publish(
          `${i % 2 === 0 ? "orders" : "forbidden"}.${stream}.n${i}`,
          TestEventSchema,
          { text: `${i}` },
          {
            timeoutMs: 30_000,
          },
        ),
      ),
    );
    outcomes.forEach((outcome, i) => {
      if (i % 2 === 0) expect(outcome.status, `publish ${i}`).toBe("fulfilled");
      else {
        expect(outcome.status, `publish ${i}`).toBe("rejected");
        const reason = (outcome as PromiseRejectedResult).reason;
        expect(isWindshiftError(reason, ErrorCode.PermissionDenied), String(reason)).toBe(true);
        expect((reason as WindshiftError).details.subject).toBe(`forbidden.${stream}.n${i}`);
      }
    });
    expect((await admin.streamInfo(stream)).state.events).toBe(10);
  });

  it("by a user who may not subscribe to its inbox fails with PERMISSION_DENIED, not CLOSED, every time", async () => {
    const stream = await ordersStream();
    const { events } = await clientOf("noinbox");
    for (let attempt = 1; attempt <= 2; attempt++) {
      const { err, ms } = await timed(() =>
        events.publish(`orders.${stream}.created`, TestEventSchema, { text: "x" }, { timeoutMs: 30_000 }),
      );
      console.log(`publish with a denied inbox (attempt ${attempt}) failed after ${ms} ms`);
      expect(err.code).toBe(ErrorCode.PermissionDenied);
      expect(err.details.operation).toBe("subscribe");
      expect(String(err.details.subject)).toMatch(/^_INBOX\./);
      // The publish itself was allowed: only its acknowledgement could not come back.
      expect(err.message).toContain("may or may not have been stored");
    }
  });
});

describe("pulling", { timeout: 15_000 }, () => {
  it("a subscription to a consumer the user may not pull from ends with PERMISSION_DENIED", async () => {
    const stream = await ordersStream();
    await admin.ensureConsumer(stream, { name: "locked", from: { start: true } });
    await admin.publish(`orders.${stream}.a`, TestEventSchema, { text: "waiting" });
    const { events, log } = await clientOf("limited");

    const started = performance.now();
    const sub = await events.subscribe(stream, "locked", { schema: TestEventSchema });
    const err = await windshiftError(async () => {
      for await (const event of sub) await event.ack();
    });
    console.log(`denied pull ended the subscription after ${Math.round(performance.now() - started)} ms`);
    expect(err.code).toBe(ErrorCode.PermissionDenied);
    expect(err.details).toMatchObject({ operation: "publish", subject: `$JS.API.CONSUMER.MSG.NEXT.${stream}.locked` });
    expect(err.message).toContain(`"${stream}"/"locked"`);
    expect(await sub.closed).toBe(err);
    expect(log.lines.filter((l) => l.message.includes("heartbeats missed"))).toEqual([]);
    expect((await admin.consumerInfo(stream, "locked")).state.unsettled).toBe(0);
  });

  it("a processor on a consumer the user may not pull from closes with PERMISSION_DENIED", async () => {
    const stream = await ordersStream();
    await admin.ensureConsumer(stream, { name: "locked", from: { start: true } });
    const { events } = await clientOf("limited");
    let handled = 0;
    const processor = await events.process(
      stream,
      "locked",
      handle(TestEventSchema, () => {
        handled++;
      }),
    );
    const failure = await processor.closed;
    expect(failure?.code).toBe(ErrorCode.PermissionDenied);
    expect(failure?.details.subject).toBe(`$JS.API.CONSUMER.MSG.NEXT.${stream}.locked`);
    expect(handled).toBe(0);
    await processor.close();
  });

  it("a subscription that may not recreate its deleted consumer ends with PERMISSION_DENIED instead of trying forever", async () => {
    const stream = await ordersStream();
    await admin.ensureConsumer(stream, { name: "fixed", from: { start: true } });
    const { events } = await clientOf("limited");
    const sub = await events.subscribe(stream, "fixed", { onConsumerDeleted: "recreate" });
    await admin.deleteConsumer(stream, "fixed");
    const failure = await sub.closed;
    expect(failure?.code).toBe(ErrorCode.PermissionDenied);
    expect(String(failure?.details.subject)).toContain(`${stream}.fixed`);
  });

  it("reading a stream back (replaying dead letters) without the right to pull fails with PERMISSION_DENIED", async () => {
    const dlq = uniqueName("dlq");
    await admin.ensureStream(dlq, { subjects: [`${dlq}.>`] });
    await admin.publish(`${dlq}.letter`, TestEventSchema, { text: "x" });
    const { events } = await clientOf("nopull");
    const { err, ms } = await timed(() => events.replayDeadLetters(dlq));
    console.log(`denied read failed after ${ms} ms`);
    expect(err.code).toBe(ErrorCode.PermissionDenied);
    expect(String(err.details.subject)).toMatch(new RegExp(`^\\$JS\\.API\\.CONSUMER\\.MSG\\.NEXT\\.${dlq}\\.`));
    expect(err.message).toContain(`reading stream "${dlq}"`);
    expect((await admin.streamInfo(dlq)).state.events).toBe(1);
  });

  it("a user who may not subscribe to inboxes cannot even look the consumer up: PERMISSION_DENIED", async () => {
    const stream = await ordersStream();
    await admin.ensureConsumer(stream, { name: "worker", from: { start: true } });
    const { events } = await clientOf("noinbox");
    const { err } = await timed(() => events.subscribe(stream, "worker"));
    expect(err.code).toBe(ErrorCode.PermissionDenied);
    expect(err.details.operation).toBe("subscribe");
  });
});

describe("settling", { timeout: 15_000 }, () => {
  it("a confirmed ack the user may not send fails with PERMISSION_DENIED at once, without retries", async () => {
    const stream = await ordersStream();
    await admin.ensureConsumer(stream, { name: "noacks", from: { start: true } });
    await admin.publish(`orders.${stream}.a`, TestEventSchema, { text: "a" });
    const { events, log } = await clientOf("limited");
    await using sub = await events.subscribe(stream, "noacks", {
      schema: TestEventSchema,
      confirmAcks: true,
      closeTimeoutMs: 100,
    });
    const event = await nextEvent(sub[Symbol.asyncIterator]());
    const { err, ms } = await timed(() => event.ack());
    console.log(`denied confirmed ack failed after ${ms} ms`);
    expect(err.code).toBe(ErrorCode.PermissionDenied);
    expect(err.details.operation).toBe("publish");
    expect(String(err.details.subject)).toMatch(new RegExp(`^\\$JS\\.ACK\\.${stream}\\.noacks\\.`));
    expect(log.lines.filter((l) => l.message.includes("retrying"))).toEqual([]);
  });

  it("fire-and-forget acks the user may not send are warned about once per consumer", async () => {
    const stream = await ordersStream();
    await admin.ensureConsumer(stream, { name: "noacks", from: { start: true } });
    for (let i = 0; i < 3; i++) await admin.publish(`orders.${stream}.a`, TestEventSchema, { text: `${i}` });
    const { events, log } = await clientOf("limited");
    await using sub = await events.subscribe(stream, "noacks", {
      schema: TestEventSchema,
      confirmAcks: false,
      closeTimeoutMs: 100,
    });
    const it = sub[Symbol.asyncIterator]();
    for (let i = 0; i < 3; i++) await (await nextEvent(it)).ack();
    const denied = () => log.lines.filter((l) => l.message.startsWith("settlements are denied"));
    await waitFor(() => denied().length > 0, { what: "the warning" });
    // Every ack was refused by now (they went out in one write, before the warning came back).
    await waitFor(async () => (await events.consumerInfo(stream, "noacks")).state.unsettled === 3, {
      what: "3 unacked",
    });
    expect(denied()).toHaveLength(1);
    expect(denied()[0]).toMatchObject({ level: "warn", fields: { stream, consumer: "noacks", operation: "publish" } });
  });
});

describe("management calls", { timeout: 15_000 }, () => {
  it("with the JetStream API denied fail with PERMISSION_DENIED naming the API subject", async () => {
    const stream = await ordersStream();
    const { events } = await clientOf("noapi");
    const created = await timed(() => events.ensureStream(uniqueName("perm"), { subjects: ["orders.noapi.>"] }));
    console.log(`denied ensureStream failed after ${created.ms} ms`);
    expect(created.err.code).toBe(ErrorCode.PermissionDenied);
    expect(created.err.details.operation).toBe("publish");
    expect(String(created.err.details.subject)).toMatch(/^\$JS\.API\.STREAM\./);
    expect(created.err.message).toContain("ensureStream");
    expect(created.err.message).toContain(String(created.err.details.subject));

    const info = await timed(() => events.streamInfo(stream));
    expect(info.err.code).toBe(ErrorCode.PermissionDenied);
    expect(info.err.details.subject).toBe(`$JS.API.STREAM.INFO.${stream}`);
  });
});

describe("dead letters", { timeout: 15_000 }, () => {
  it("a dead-letter subject the user may not publish to is final: the event is rejected, not given back", async () => {
    const stream = await ordersStream();
    await admin.ensureConsumer(stream, { name: "worker", from: { start: true } });
    const dlq = uniqueName("dlq");
    await admin.ensureStream(dlq, { subjects: [`forbidden.${dlq}.>`] });
    await admin.publish(`orders.${stream}.a`, TestEventSchema, { text: "poison" });
    const { events, log } = await clientOf("limited");
    let attempts = 0;
    await using processor = await events.process(
      stream,
      "worker",
      handle(TestEventSchema, () => {
        attempts++;
        throw new PermanentError("cannot be handled");
      }),
      { deadLetter: { subject: `forbidden.${dlq}.letters` } },
    );
    await waitFor(() => processor.stats.rejected === 1, { what: "the event rejected" });
    expect(processor.stats).toMatchObject({ failed: 1, rejected: 1, deadLettered: 0, retried: 0 });
    const logged = log.lines.find((l) => l.message.includes("dead-letter subject is not permitted"));
    expect(logged?.level).toBe("error");
    expect(logged?.message).toContain("stays in its stream");
    expect(logged?.fields).toMatchObject({ deadLetterSubject: `forbidden.${dlq}.letters`, id: 1 });
    await waitFor(async () => (await admin.consumerInfo(stream, "worker")).state.unsettled === 0, { what: "settled" });
    expect(attempts).toBe(1);
    expect((await admin.consumerInfo(stream, "worker")).state.redelivered).toBe(0);
    expect((await admin.streamInfo(stream)).state.events).toBe(1);
    expect((await admin.streamInfo(dlq)).state.events).toBe(0);
  });
});

describe("credentials", { timeout: 15_000 }, () => {
  it("no password used to connect appears in an error, its details, its causes, or a log line", async () => {
    const stream = await ordersStream();
    await admin.ensureConsumer(stream, { name: "locked", from: { start: true } });
    const limited = await clientOf("limited");
    const noapi = await clientOf("noapi");
    const noinbox = await clientOf("noinbox");
    const errors: WindshiftError[] = [
      await windshiftError(limited.events.publish(`forbidden.${stream}.x`, TestEventSchema, { text: "x" })),
      await windshiftError(noapi.events.ensureStream(uniqueName("perm"), { subjects: ["orders.creds.>"] })),
      await windshiftError(noinbox.events.publish(`orders.${stream}.x`, TestEventSchema, { text: "x" })),
      await windshiftError(noinbox.events.streamInfo(stream)),
    ];
    const sub = await limited.events.subscribe(stream, "locked");
    const ended = await sub.closed;
    expect(ended).toBeDefined();
    errors.push(ended as WindshiftError);
    for (const err of errors) expect(err.code).toBe(ErrorCode.PermissionDenied);
    expectNoPassword(errors.flatMap(everyText));
    const lines = [limited, noapi, noinbox].flatMap(({ log }) => log.lines);
    expect(lines.length).toBeGreaterThan(0);
    expectNoPassword(lines.map((line) => JSON.stringify(line)));
  });
});
