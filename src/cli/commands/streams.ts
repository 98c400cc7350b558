import type { ConsumerInfo, StreamInfo } from "../../index.js";
import type { CommandContext } from "../command.js";
import { bytes, id, table, time, toJsonValue } from "../format.js";

/** What a stream captures: its subjects, or the streams it copies. */
export function subjectsText(info: StreamInfo): string {
  const subjects = info.config.subjects ?? [];
  if (subjects.length > 0) return subjects.join(",");
  const sources = info.config.sources ?? [];
  return sources.length > 0 ? `sources: ${sources.map((s) => s.stream).join(",")}` : "-";
}

/** A stream in `streams --json`. */
export function streamJson(info: StreamInfo): unknown {
  const s = info.state;
  return toJsonValue({
    name: info.name,
    subjects: info.config.subjects ?? [],
    events: s.events,
    bytes: s.bytes,
    firstId: s.firstId,
    firstTime: s.firstTime,
    lastId: s.lastId,
    lastTime: s.lastTime,
    distinctSubjects: s.subjects,
    consumers: s.consumers,
    config: info.config,
  });
}

/** A consumer in `consumers --json`. */
export function consumerJson(info: ConsumerInfo): unknown {
  const s = info.state;
  return toJsonValue({
    stream: info.stream,
    name: info.name,
    pending: s.pending,
    unsettled: s.unsettled,
    redelivered: s.redelivered,
    lastDeliveredId: s.lastDeliveredId,
    lastAckedId: s.lastAckedId,
    config: info.config,
  });
}

/** `windshift streams`. */
export async function streams(ctx: CommandContext): Promise<void> {
  const streams = await (await ctx.events()).listStreams();
  if (ctx.json) {
    ctx.out.json(streams.map(streamJson));
    return;
  }
  if (streams.length === 0) {
    ctx.out.line("no streams");
    return;
  }
  const columns = [
    { heading: "STREAM" },
    { heading: "SUBJECTS" },
    { heading: "EVENTS", right: true },
    { heading: "BYTES", right: true },
    { heading: "CONSUMERS", right: true },
    { heading: "LAST EVENT" },
  ];
  const rows = streams.map((s) => [
    s.name,
    subjectsText(s),
    String(s.state.events),
    bytes(s.state.bytes),
    String(s.state.consumers),
    time(s.state.lastTime),
  ]);
  for (const line of table(columns, rows)) ctx.out.line(line);
}

/** `windshift consumers STREAM`. */
export async function consumers(ctx: CommandContext): Promise<void> {
  const [stream] = ctx.args as [string];
  const consumers = await (await ctx.events()).listConsumers(stream);
  if (ctx.json) {
    ctx.out.json(consumers.map(consumerJson));
    return;
  }
  if (consumers.length === 0) {
    ctx.out.line(`no consumers on "${stream}"`);
    return;
  }
  const columns = [
    { heading: "CONSUMER" },
    { heading: "LAG", right: true },
    { heading: "UNACKED", right: true },
    { heading: "REDELIVERED", right: true },
    { heading: "LAST DELIVERED", right: true },
    { heading: "LAST ACKED", right: true },
  ];
  const rows = consumers.map((c) => [
    c.name,
    String(c.state.pending),
    String(c.state.unsettled),
    String(c.state.redelivered),
    id(c.state.lastDeliveredId),
    id(c.state.lastAckedId),
  ]);
  for (const line of table(columns, rows)) ctx.out.line(line);
}
