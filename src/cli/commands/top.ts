import { type ConsumerInfo, ErrorCode, type Events, isWindshiftError, type StreamInfo } from "../../index.js";
import { integerOption } from "../args.js";
import type { CommandContext } from "../command.js";
import { bytes, rate, table, time } from "../format.js";

/** What the server held at one refresh. */
export interface Snapshot {
  /** When it was taken (ms since the epoch). */
  readonly at: number;
  readonly streams: readonly StreamInfo[];
  readonly consumers: readonly ConsumerInfo[];
}

/** A snapshot with the rates since the one before it (`undefined` on the first). */
export interface Frame {
  readonly snapshot: Snapshot;
  /** Events stored per second, by stream name. */
  readonly eventsPerSecond: ReadonlyMap<string, number | undefined>;
  /** Events settled (acked or rejected for good) per second, by `stream/consumer`. */
  readonly acksPerSecond: ReadonlyMap<string, number | undefined>;
}

async function take(events: Events, signal: AbortSignal): Promise<Snapshot> {
  const streams = await events.listStreams({ signal });
  const lists = await Promise.all(
    streams.map((s) =>
      events.listConsumers(s.name, { signal }).catch((err: unknown) => {
        // Deleted since it was listed.
        if (isWindshiftError(err, ErrorCode.NotFound)) return [];
        throw err;
      }),
    ),
  );
  return { at: Date.now(), streams, consumers: lists.flat() };
}

const key = (c: ConsumerInfo) => `${c.stream}/${c.name}`;

/**
 * The rates between two snapshots. A consumer's settled events are the
 * stream's new events less what its lag and its unacked events grew by; that
 * holds for a consumer of every subject only (for one with `subjects`, the
 * stream's new events are not all its own), so others have no rate.
 */
export function frameOf(previous: Snapshot | undefined, current: Snapshot): Frame {
  const seconds = previous === undefined ? 0 : (current.at - previous.at) / 1_000;
  const before = new Map(previous?.streams.map((s) => [s.name, s]) ?? []);
  const eventsPerSecond = new Map<string, number | undefined>();
  const stored = new Map<string, number | undefined>();
  for (const s of current.streams) {
    const old = before.get(s.name);
    const added = old === undefined || seconds <= 0 ? undefined : s.state.lastId - old.state.lastId;
    stored.set(s.name, added !== undefined && added >= 0 ? added : undefined);
    eventsPerSecond.set(s.name, added !== undefined && added >= 0 ? added / seconds : undefined);
  }
  const consumersBefore = new Map(previous?.consumers.map((c) => [key(c), c]) ?? []);
  const acksPerSecond = new Map<string, number | undefined>();
  for (const c of current.consumers) {
    const old = consumersBefore.get(key(c));
    const added = stored.get(c.stream);
    const everySubject = (c.config.subjects ?? []).length === 0;
    if (old === undefined || added === undefined || !everySubject) {
      acksPerSecond.set(key(c), undefined);
      continue;
    }
    const settled = added - (c.state.pending - old.state.pending) - (c.state.unsettled - old.state.unsettled);
    acksPerSecond.set(key(c), Math.max(0, settled) / seconds);
  }
  return { snapshot: current, eventsPerSecond, acksPerSecond };
}

/** The frame as text: a streams table and a consumers table. */
export function frameLines(frame: Frame, intervalMs: number): string[] {
  const { snapshot } = frame;
  const lines = [`windshift top  ${time(new Date(snapshot.at))}  every ${intervalMs} ms, Ctrl-C to quit`, ""];
  const streamColumns = [
    { heading: "STREAM" },
    { heading: "EVENTS", right: true },
    { heading: "BYTES", right: true },
    { heading: "EVENTS/S", right: true },
    { heading: "CONSUMERS", right: true },
    { heading: "LAST EVENT" },
  ];
  const streamRows = snapshot.streams.map((s) => [
    s.name,
    String(s.state.events),
    bytes(s.state.bytes),
    rate(frame.eventsPerSecond.get(s.name)),
    String(s.state.consumers),
    time(s.state.lastTime),
  ]);
  lines.push(...(streamRows.length === 0 ? ["no streams"] : table(streamColumns, streamRows)));
  if (snapshot.consumers.length > 0) {
    const consumerColumns = [
      { heading: "STREAM" },
      { heading: "CONSUMER" },
      { heading: "LAG", right: true },
      { heading: "UNACKED", right: true },
      { heading: "REDELIVERED", right: true },
      { heading: "ACKS/S", right: true },
    ];
    const consumerRows = snapshot.consumers.map((c) => [
      c.stream,
      c.name,
      String(c.state.pending),
      String(c.state.unsettled),
      String(c.state.redelivered),
      rate(frame.acksPerSecond.get(key(c))),
    ]);
    lines.push("", ...table(consumerColumns, consumerRows));
  }
  return lines;
}

function frameJson(frame: Frame): unknown {
  const { snapshot } = frame;
  return {
    time: new Date(snapshot.at).toISOString(),
    streams: snapshot.streams.map((s) => ({
      name: s.name,
      events: s.state.events,
      bytes: s.state.bytes,
      lastId: s.state.lastId,
      consumers: s.state.consumers,
      eventsPerSecond: frame.eventsPerSecond.get(s.name) ?? null,
    })),
    consumers: snapshot.consumers.map((c) => ({
      stream: c.stream,
      name: c.name,
      pending: c.state.pending,
      unsettled: c.state.unsettled,
      redelivered: c.state.redelivered,
      acksPerSecond: frame.acksPerSecond.get(key(c)) ?? null,
    })),
  };
}

/** Waits `ms`, or less when `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

const CLEAR = "\x1b[H\x1b[2J";
const HIDE_CURSOR = "\x1b[?25l";
const SHOW_CURSOR = "\x1b[?25h";

/** `windshift top`. */
export async function top(ctx: CommandContext): Promise<void> {
  const intervalMs = integerOption(ctx.values, "interval", 100) ?? 2_000;
  const events = await ctx.events();
  const redraw = ctx.out.isTTY && !ctx.json;
  if (redraw) ctx.out.write(HIDE_CURSOR);
  try {
    let previous: Snapshot | undefined;
    while (!ctx.signal.aborted) {
      let frame: Frame | undefined;
      let failure: string | undefined;
      try {
        const snapshot = await take(events, ctx.signal);
        frame = frameOf(previous, snapshot);
        previous = snapshot;
      } catch (err) {
        if (ctx.signal.aborted) break;
        failure = `refresh failed: ${err instanceof Error ? err.message : String(err)}`;
      }
      if (ctx.json) {
        ctx.out.json(frame === undefined ? { time: new Date().toISOString(), error: failure } : frameJson(frame));
      } else {
        const lines = frame === undefined ? [failure ?? ""] : frameLines(frame, intervalMs);
        ctx.out.write(`${redraw ? CLEAR : ""}${lines.join("\n")}\n${redraw ? "" : "\n"}`);
      }
      await pause(intervalMs, ctx.signal);
    }
  } finally {
    if (redraw) ctx.out.write(SHOW_CURSOR);
  }
}
