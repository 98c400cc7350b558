import type { Registry } from "@bufbuild/protobuf";
import { type ConsumerStart, ErrorCode, type Event, Headers, isWindshiftError } from "../../index.js";
import { integerOption, stringOption, UsageError } from "../args.js";
import type { CommandContext } from "../command.js";
import { dataText, eventJson, loadDescriptors, type ShownEvent, showData } from "../descriptors.js";

/** `start`, `end`, an id, or an RFC 3339 time. */
export function parseFrom(text: string | undefined): ConsumerStart {
  if (text === undefined || text === "end") return { end: true };
  if (text === "start") return { start: true };
  if (/^\d+$/.test(text) && Number(text) >= 1 && Number.isSafeInteger(Number(text))) return { id: Number(text) };
  const ms = /^\d{4}-\d{2}-\d{2}/.test(text) ? Date.parse(text) : Number.NaN;
  if (Number.isNaN(ms)) {
    throw new UsageError(`--from: "${text}" is not start, end, an event id or a time (2025-01-31T12:00:00Z)`);
  }
  return { time: new Date(ms) };
}

/**
 * The headers a delivered event is known to carry (a delivered `Event` reads
 * headers by name only): windshift's, JetStream's and W3C trace context.
 */
const KNOWN_HEADERS = [...Object.values(Headers), "traceparent", "tracestate", "baggage"];

/** A delivered event's headers that are set, by name. */
function deliveredHeaders(event: Event): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of KNOWN_HEADERS) {
    const value = event.headers.get(name);
    if (value !== undefined) out[name] = value;
  }
  return out;
}

/** One event as one line: `#12 2025-05-01T10:11:12.345Z orders.created shop.v1.OrderCreated key=o-1 {"orderId":"1"}`. */
export function eventLine(event: ShownEvent, registry: Registry | undefined): string {
  const occurred = event.headers.occurredAt?.toISOString() ?? "-";
  const key = event.headers.idempotencyKey;
  const data = dataText(showData(registry, event.type, event.payload));
  return [
    `#${event.id}`,
    occurred,
    event.subject,
    event.type || "-",
    ...(key === undefined ? [] : [`key=${key}`]),
    data,
  ].join(" ");
}

/** `windshift tail STREAM`. */
export async function tail(ctx: CommandContext): Promise<void> {
  const [stream] = ctx.args as [string];
  const from = parseFrom(stringOption(ctx.values, "from"));
  const limit = integerOption(ctx.values, "limit");
  const subject = stringOption(ctx.values, "subject");
  const descriptors = stringOption(ctx.values, "descriptors");
  const registry = descriptors === undefined ? undefined : await loadDescriptors(descriptors);
  const events = await ctx.events();
  const consumer = await events.ensureConsumer(stream, {
    from,
    ...(subject === undefined ? {} : { subjects: [subject] }),
    // Removed by the server soon if this process is killed before it can delete it.
    inactiveThresholdMs: 60_000,
    signal: ctx.signal,
  });
  try {
    if (ctx.signal.aborted) return;
    const sub = await events.subscribe(stream, consumer.name, {
      confirmAcks: false,
      prefetch: Math.min(limit ?? 50, 50),
      signal: ctx.signal,
    });
    try {
      let seen = 0;
      for await (const event of sub) {
        if (ctx.json) {
          const data = showData(registry, event.type, event.payload);
          ctx.out.json(eventJson(event, data, deliveredHeaders(event)));
        } else {
          ctx.out.line(eventLine(event, registry));
        }
        await event.ack();
        if (limit !== undefined && ++seen >= limit) break;
      }
    } finally {
      await sub.close();
    }
  } finally {
    await events.deleteConsumer(stream, consumer.name).catch((err: unknown) => {
      if (!isWindshiftError(err, ErrorCode.NotFound)) throw err;
    });
  }
}
