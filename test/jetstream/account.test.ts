/**
 * A connection whose account has no JetStream: every call that needs it fails
 * at once with a typed error that says so, never with a timeout.
 */
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, expect, it } from "vitest";
import { TestEventSchema } from "../../gen/windshift/test/v1/events_pb.js";
import { createEvents, ErrorCode, type Events } from "../../src/index.js";
import { type NatsServer, startNatsServer } from "../../src/testing/index.js";
import { windshiftError } from "../helpers.js";

let server: NatsServer;
let nc: NatsConnection;
let events: Events;

beforeAll(async () => {
  server = await startNatsServer({
    config: `accounts {
      WITH { jetstream: enabled, users: [{ user: with, password: with-secret }] }
      WITHOUT { users: [{ user: without, password: without-secret }] }
    }`,
  });
  nc = await connect({ servers: server.url, user: "without", pass: "without-secret" });
  events = createEvents(nc);
});

afterAll(async () => {
  await nc?.close();
  await server?.stop();
});

it("fails every JetStream call at once with a typed error naming JetStream", async () => {
  const calls: [string, () => Promise<unknown>][] = [
    ["ensureStream", () => events.ensureStream("s", { subjects: ["s.>"] })],
    ["streamInfo", () => events.streamInfo("s")],
    ["subscribe", () => events.subscribe("s", "c")],
    ["idempotent", () => events.idempotent("done")],
  ];
  for (const [, call] of calls) {
    const err = await windshiftError(call);
    expect(err.code).toBe(ErrorCode.Server);
    expect(err.message).toContain("JetStream did not answer (is it enabled?)");
  }
  // A publish has no stream to answer it: not stored, and said so.
  const publish = await windshiftError(events.publish("s.a", TestEventSchema, { text: "x" }, { timeoutMs: 20_000 }));
  expect(publish.code).toBe(ErrorCode.Unavailable);
  expect(publish.message).toContain("the event was not stored");
  expect(String(publish)).not.toContain("without-secret");
});
