/**
 * How a PostgreSQL subscription learns of new events: a notification wakes
 * it at once (no poll is due for a minute here), and when the listening
 * connection is lost, polling and the listener's reconnection bring the
 * event within `pollIntervalMs`.
 */
import { afterAll, describe, expect, it } from "vitest";
import { TestEventSchema } from "../../gen/windshift/test/v1/events_pb.js";
import type { Events } from "../../src/index.js";
import { createPostgresEvents } from "../../src/postgres/index.js";
import { nextEvent, waitFor } from "../helpers.js";
import { uniqueStream, usePostgres } from "./harness.js";

const env = usePostgres();
const clients: Events[] = [];

function client(pollIntervalMs: number, applicationName: string): Events {
  const pool = env.createPool({ max: 4, application_name: applicationName });
  const events = createPostgresEvents({ pool, schema: env.schema, migrate: false, pollIntervalMs });
  clients.push(events);
  return events;
}

/** The idle connections of `applicationName` that last ran a LISTEN. */
async function listeners(applicationName: string): Promise<{ pid: number }[]> {
  const found = await env.pool.query<{ pid: number }>(
    "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND query ILIKE 'LISTEN%' AND state = 'idle'",
    [applicationName],
  );
  return found.rows;
}

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
});

/**
 * A subscription of consumer "r" from the start of a new stream, on a reader polling every
 * `pollIntervalMs`, once its LISTEN connection is up; and a writer of that stream.
 */
async function listeningReader(pollIntervalMs: number) {
  const stream = uniqueStream();
  const name = uniqueStream("reader");
  const reader = client(pollIntervalMs, name);
  const writer = client(60_000, uniqueStream("writer"));
  await writer.ensureStream(stream, { subjects: [`${stream}.>`] });
  await writer.ensureConsumer(stream, { name: "r", from: { start: true } });
  const sub = await reader.subscribe(stream, "r", { schema: TestEventSchema });
  const listener = await waitFor(
    async () => {
      const rows = await listeners(name);
      return rows.length === 1 && rows[0];
    },
    { what: "the subscription's LISTEN connection" },
  );
  return { stream, name, writer, sub, it: sub[Symbol.asyncIterator](), listener };
}

describe("wake-ups", () => {
  it("a notification brings a new event at once, long before the next poll", async () => {
    // Listening: from now on only a notification (or a poll in 60 s) wakes the subscription.
    const { stream, writer, sub, it } = await listeningReader(60_000);
    await using _ = sub;
    const next = it.next();
    const sent = Date.now();
    await writer.publish(`${stream}.a`, TestEventSchema, { text: "wake" });
    const event = (await next).value;
    const tookMs = Date.now() - sent;
    expect(event?.data.text).toBe("wake");
    expect(tookMs).toBeLessThan(10_000);
    await event?.ack();
  });

  it("a notification that comes while the feed looks up how long to wait is not lost (ping-pong, 200 rounds)", async () => {
    const { stream, writer, sub, it } = await listeningReader(60_000);
    await using _ = sub;
    // Each event is published the moment the last one arrives: when the feed, its claim done, asks how long
    // it may sleep. With no poll for a minute, a wake-up lost there stalls the round past nextEvent's 5 s.
    const acks: Promise<void>[] = [];
    for (let i = 0; i < 200; i++) {
      await writer.publish(`${stream}.a`, TestEventSchema, { text: `round ${i}` });
      const event = await nextEvent(it, 5_000);
      expect(event.data.text).toBe(`round ${i}`);
      acks.push(event.ack());
    }
    await Promise.all(acks);
  });

  it("after the listening connection is killed, an event still arrives within the poll interval", async () => {
    const { stream, name, writer, sub, it, listener } = await listeningReader(500);
    await using _ = sub;
    await env.pool.query("SELECT pg_terminate_backend($1)", [listener.pid]);
    await writer.publish(`${stream}.a`, TestEventSchema, { text: "after the kill" });
    const event = await nextEvent(it, 5_000);
    expect(event.data.text).toBe("after the kill");
    await event.ack();
    // The listener comes back by itself.
    await waitFor(async () => (await listeners(name)).some((row) => row.pid !== listener.pid), {
      what: "a new LISTEN connection",
    });
  });
});
