/**
 * What the conformance tests share besides the harness: publishing a few
 * events, reading a stream back, and waiting for a promise while the
 * engine's time passes. Everything goes through `Events` and the harness.
 */
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { TestEventSchema } from "../../gen/windshift/test/v1/events_pb.js";
import type { Event, Events } from "../../src/index.js";
import { type EngineEnv, nextOf } from "./harness.js";

export { windshiftError } from "../helpers.js";

/** Publishes `n` TestEvents to `subject` (texts `<text>0`, `<text>1`…, numbers 0, 1…), one after the other; their ids. */
export async function publishN(events: Events, subject: string, n: number, text = "e"): Promise<number[]> {
  const ids: number[] = [];
  for (let i = 0; i < n; i++) {
    ids.push((await events.publish(subject, TestEventSchema, { text: `${text}${i}`, number: BigInt(i) })).id);
  }
  return ids;
}

/**
 * Waits for `work` while the engine's time passes (the test clock advances
 * on memory; real time on JetStream), for what settles only after a
 * timeout, a delay or a retry; returns its value or throws its error.
 */
export async function until<T>(env: EngineEnv, work: Promise<T>, what: string): Promise<T> {
  let done = false;
  const watched = work.finally(() => {
    done = true;
  });
  watched.catch(() => {});
  await env.eventually(() => done, { what });
  return watched;
}

/** The event a pending `next()` brings, letting the engine's time pass until it comes. */
export async function arrival<T>(env: EngineEnv, next: Promise<IteratorResult<T>>, what: string): Promise<T> {
  const result = await until(env, next, what);
  if (result.done === true) throw new Error(`the iteration ended while waiting for ${what}`);
  return result.value;
}

/** How many events `stream` holds now, counted by a new consumer from the start. */
export async function storedCount(env: EngineEnv, stream: string): Promise<number> {
  const reader = await env.events.ensureConsumer(stream, { from: { start: true } });
  return (await env.progress(stream, reader.name)).pending;
}

/**
 * The events `stream` holds, oldest first, read (and acked) through a new
 * ephemeral consumer, so the stream's other consumers are not touched; once
 * at least `atLeast` are there (copies by sources arrive asynchronously on
 * JetStream). Decoded by `schema` when one is given.
 */
export async function storedEvents<Desc extends DescMessage>(
  env: EngineEnv,
  stream: string,
  options: { readonly schema: Desc; readonly atLeast?: number },
): Promise<Event<MessageShape<Desc>>[]>;
export async function storedEvents(
  env: EngineEnv,
  stream: string,
  options?: { readonly atLeast?: number },
): Promise<Event[]>;
export async function storedEvents(
  env: EngineEnv,
  stream: string,
  options: { readonly schema?: DescMessage; readonly atLeast?: number } = {},
): Promise<Event[]> {
  const atLeast = options.atLeast ?? 0;
  const reader = await env.events.ensureConsumer(stream, { from: { start: true } });
  const pending = await env.eventually(
    async () => {
      const progress = await env.progress(stream, reader.name);
      return progress.pending >= atLeast && { count: progress.pending };
    },
    { what: `${atLeast} events stored in ${stream}` },
  );
  if (pending.count === 0) return [];
  await using sub = await env.events.subscribe(
    stream,
    reader.name,
    options.schema === undefined ? {} : { schema: options.schema },
  );
  const it = sub[Symbol.asyncIterator]();
  const out: Event[] = [];
  for (let i = 0; i < pending.count; i++) {
    const event = await nextOf(it);
    out.push(event);
    await event.ack();
  }
  return out;
}
