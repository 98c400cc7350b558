/**
 * Scenario 6: poison messages between good events: bytes that do not decode,
 * a message without headers, a type the registry does not know. Every good
 * event is processed; every poison one surfaces (its `data` throws
 * INVALID_DATA) and can be rejected for good.
 */
import { create, createRegistry, toBinary } from "@bufbuild/protobuf";
import { jetstream } from "@nats-io/jetstream";
import { headers as natsHeaders } from "@nats-io/nats-core";
import { expect, it } from "vitest";
import { OtherEventSchema, TestEventSchema } from "../../gen/windshift/test/v1/events_pb.js";
import { ErrorCode, type Event, Headers, isWindshiftError } from "../../src/index.js";
import { expectNoEvent, nextEvent, uniqueName, waitFor } from "../helpers.js";
import { report, since, useFaultServer } from "./support.js";

const PROCESSING_TIMEOUT_MS = 1_000;

const env = useFaultServer();

/** One entry of the stream as the test wrote it. */
interface Entry {
  id: number;
  subject: string;
  poison: string | undefined;
  text?: string;
}

/** Writes good events (through windshift) and poison (raw) alternately; returns them in stream order. */
async function fill(stream: string): Promise<Entry[]> {
  const js = jetstream(env.nc);
  const entries: Entry[] = [];
  const good = async (n: number, other = false): Promise<void> => {
    const subject = `${stream}.${other ? "o" : "t"}`;
    const ack = other
      ? await env.events.publish(subject, OtherEventSchema, { name: `g${n}` }, { idempotencyKey: `g${n}` })
      : await env.events.publish(subject, TestEventSchema, { text: `g${n}` }, { idempotencyKey: `g${n}` });
    entries.push({ id: ack.id, subject, poison: undefined, text: `g${n}` });
  };
  const poison = async (what: string, payload: Uint8Array, type: string | undefined, subject: string) => {
    const h = type === undefined ? undefined : natsHeaders();
    if (h !== undefined && type !== undefined) {
      h.set(Headers.DataType, type);
      h.set(Headers.MsgId, what);
    }
    const ack = await js.publish(subject, payload, h === undefined ? {} : { headers: h });
    entries.push({ id: ack.seq, subject, poison: what });
  };
  const validTest = toBinary(TestEventSchema, create(TestEventSchema, { text: "no headers" }));
  await good(1);
  // Field 1 with wire type 7: no Protobuf decoder accepts it.
  await poison("garbage", new Uint8Array([0x0f, 0xde, 0xad]), TestEventSchema.typeName, `${stream}.t`);
  await good(2, true);
  // Valid bytes, but nothing says what they are.
  await poison("no-headers", validTest, undefined, `${stream}.t`);
  await good(3);
  await poison("unknown-type", validTest, "windshift.test.v1.Nope", `${stream}.t`);
  await good(4, true);
  await poison("truncated", new Uint8Array([0x0a, 0x10, 0x41]), OtherEventSchema.typeName, `${stream}.o`);
  await good(5);
  return entries;
}

async function setup(prefix: string): Promise<{ stream: string; entries: Entry[] }> {
  const stream = uniqueName(prefix);
  await env.events.ensureStream(stream, { subjects: [`${stream}.>`] });
  await env.events.ensureConsumer(stream, {
    name: "worker",
    from: { start: true },
    processingTimeoutMs: PROCESSING_TIMEOUT_MS,
  });
  return { stream, entries: await fill(stream) };
}

/** The handler a careful user writes: process what decodes, reject the rest for good. */
async function handle(event: Event, processed: Map<number, string>, poisoned: Map<number, string>): Promise<void> {
  let text: string;
  try {
    const data = event.data as { text?: string; name?: string };
    text = data.text ?? data.name ?? "";
  } catch (err) {
    if (!isWindshiftError(err)) throw err;
    poisoned.set(event.id, err.code);
    await event.reject({ permanent: true });
    return;
  }
  processed.set(event.id, text);
  await event.ack();
}

async function drainConsumer(stream: string): Promise<void> {
  await waitFor(
    async () => {
      const info = await env.jsm.consumers.info(stream, "worker");
      return info.num_ack_pending === 0 && info.num_pending === 0;
    },
    { what: "the consumer to hold nothing unsettled" },
  );
}

it("with a registry: good events processed in order, poison surfaced as INVALID_DATA and terminated", async () => {
  const started = performance.now();
  const { stream, entries } = await setup("poison_reg");
  const sub = await env.events.subscribe(stream, "worker", {
    registry: createRegistry(TestEventSchema, OtherEventSchema),
  });
  const it = sub[Symbol.asyncIterator]();
  const processed = new Map<number, string>();
  const poisoned = new Map<number, string>();
  const order: number[] = [];
  for (let i = 0; i < entries.length; i++) {
    const event = await nextEvent(it);
    order.push(event.id);
    await handle(event, processed, poisoned);
  }
  // Longer than the processing timeout: a poison event that was not terminated would be back.
  const quiet = await expectNoEvent(it, PROCESSING_TIMEOUT_MS * 2.5);
  await drainConsumer(stream);
  report("poison", {
    decoder: "registry",
    good: processed.size,
    poison: poisoned.size,
    tookMs: since(started),
  });

  expect(order).toEqual(entries.map((e) => e.id));
  expect([...processed]).toEqual(entries.filter((e) => e.poison === undefined).map((e) => [e.id, e.text]));
  expect([...poisoned]).toEqual(
    entries.filter((e) => e.poison !== undefined).map((e) => [e.id, ErrorCode.InvalidData]),
  );
  await sub.close();
  expect(await quiet.next).toEqual({ done: true, value: undefined });
}, 60_000);

it("with a schema: events of another type or without headers are poison too, and the loop goes on", async () => {
  const started = performance.now();
  const { stream, entries } = await setup("poison_schema");
  const sub = await env.events.subscribe(stream, "worker", { schema: TestEventSchema });
  const it = sub[Symbol.asyncIterator]();
  const processed = new Map<number, string>();
  const poisoned = new Map<number, string>();
  for (let i = 0; i < entries.length; i++) await handle(await nextEvent(it), processed, poisoned);
  const quiet = await expectNoEvent(it, PROCESSING_TIMEOUT_MS * 2.5);
  await drainConsumer(stream);
  report("poison", { decoder: "schema", good: processed.size, poison: poisoned.size, tookMs: since(started) });

  // Only the TestEvents that decode are good here; OtherEvents are "another type".
  const good = entries.filter((e) => e.poison === undefined && e.subject.endsWith(".t"));
  expect([...processed]).toEqual(good.map((e) => [e.id, e.text]));
  expect([...poisoned.keys()]).toEqual(entries.filter((e) => !good.includes(e)).map((e) => e.id));
  expect(new Set(poisoned.values())).toEqual(new Set([ErrorCode.InvalidData]));
  await sub.close();
  expect(await quiet.next).toEqual({ done: true, value: undefined });
}, 60_000);
