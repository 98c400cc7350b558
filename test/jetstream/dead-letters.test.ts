import { jetstreamManager, type StoredMsg } from "@nats-io/jetstream";
import { describe, expect, it } from "vitest";
import { TestEventSchema } from "../../gen/windshift/test/v1/events_pb.js";
import { Headers, handle } from "../../src/index.js";
import { streamWithWorker, uniqueName, useServer, waitFor, waitForSettled } from "../helpers.js";

const env = useServer();

async function stored(stream: string): Promise<StoredMsg[]> {
  const jsm = await jetstreamManager(env.nc);
  const info = await jsm.streams.info(stream);
  const out: StoredMsg[] = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
    const m = await jsm.streams.getMessage(stream, { seq });
    if (m !== null) out.push(m);
  }
  return out;
}

describe("dead letters on the server", () => {
  it("are stored with the header names spelled exactly as windshift-go reads them, under a key of their own", async () => {
    const dlq = uniqueName("dlq");
    await env.events.ensureStream(dlq, { subjects: [`${dlq}.>`] });
    const { stream, consumer } = await streamWithWorker(env.events);
    const published = await env.events.publish(
      `${stream}.a`,
      TestEventSchema,
      { text: "x" },
      { idempotencyKey: "order-7", headers: { "X-Tenant": "acme" } },
    );
    await using processor = await env.events.process(
      stream,
      consumer,
      handle(TestEventSchema, () => {
        throw new Error("always");
      }),
      { maxAttempts: 2, backoff: { initialDelayMs: 10 }, deadLetter: { subject: `${dlq}.letters` } },
    );
    await waitFor(() => processor.stats.deadLettered === 1, { what: "the dead letter" });
    await waitForSettled(env.nc, stream, consumer, 1);
    const [letter] = await stored(dlq);
    const names = [...(letter?.header.keys() ?? [])];
    for (const name of [
      "X-Tenant",
      Headers.DataType,
      Headers.PublishedTime,
      Headers.DeadLetterReason,
      Headers.DeadLetterSubject,
      Headers.DeadLetterStream,
      Headers.DeadLetterConsumer,
      Headers.DeadLetterSequence,
      Headers.DeadLetterAttempts,
      Headers.DeadLetterError,
      Headers.DeadLetterMsgId,
      Headers.MsgId,
    ]) {
      expect(names, name).toContain(name);
    }
    expect(letter?.header.get(Headers.DeadLetterMsgId)).toBe("order-7");
    expect(letter?.header.get(Headers.DeadLetterSequence)).toBe(String(published.id));
    // The dead-letter stream must not deduplicate by the event's own key.
    expect(letter?.header.get(Headers.MsgId)).not.toBe("order-7");
  });

  it("replay leaves a raw message without any headers alone", async () => {
    const dlq = uniqueName("dlq");
    await env.events.ensureStream(dlq, { subjects: [`${dlq}.>`] });
    await env.nc.request(`${dlq}.manual`, new Uint8Array([1]), { timeout: 5_000 });
    const result = await env.events.replayDeadLetters(dlq);
    expect(result).toEqual({ replayed: 0, duplicates: [], skipped: [1] });
    expect((await stored(dlq)).map((m) => [m.subject, [...m.data]])).toEqual([[`${dlq}.manual`, [1]]]);
  });
});
