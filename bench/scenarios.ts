/**
 * The scenarios: each runs its rounds for every variant in turn (raw,
 * windshift, windshift+sdk, raw, ...) on the same server and stream, and
 * keeps the median.
 *
 * @module
 */
import { jetstreamManager } from "@nats-io/jetstream";
import type { Events } from "windshift";
import type { Driver, VariantName } from "./drivers.js";
import { collectGarbage, heapUsed, median, percentile } from "./stats.js";

/** One variant's figures in one scenario. */
export interface VariantResult {
  readonly variant: VariantName;
  /** Median over the rounds. */
  readonly msgsPerSec: number;
  /** Every round's throughput, in order. */
  readonly roundsMsgsPerSec: readonly number[];
  /** Wall time per event at the median throughput, in microseconds. */
  readonly perEventUs: number;
  /** Awaited publishes only: per-call latency over all rounds' calls. */
  readonly latencyMs?: { readonly p50: number; readonly p99: number; readonly samples: number };
  /** Median over rounds of heap used at the end of a round minus at its start (after a GC), in KiB. */
  readonly heapDeltaKiB: number;
  /** Median over rounds of heap still used after a GC at the end of a round minus at its start, in KiB. */
  readonly retainedKiB: number;
  /** This variant's median throughput over raw's. */
  readonly ratioToRaw?: number;
  /** windshift+sdk over windshift. */
  readonly ratioToNoSdk?: number;
}

/** One scenario's result. */
export interface ScenarioResult {
  readonly id: string;
  readonly title: string;
  /** Events per round. */
  readonly count: number;
  readonly rounds: number;
  readonly variants: readonly VariantResult[];
}

/** Where the scenarios run and how long. */
export interface ScenarioContext {
  readonly drivers: readonly Driver[];
  /** A client on its own connection for setting up streams and consumers (untimed). */
  readonly admin: Events;
  readonly adminNc: Driver["nc"];
  readonly rounds: number;
  /** A unique prefix for this run's streams. */
  readonly prefix: string;
  /** Called after a variant's round, outside the timing (the SDK flushes its queue here). */
  afterRound(variant: VariantName): Promise<void>;
  progress(text: string): void;
}

interface Round {
  seconds: number;
  heapDelta: number;
  retained: number;
  latencies?: number[];
}

async function timed(work: () => Promise<number[] | undefined>): Promise<Round> {
  collectGarbage();
  const before = heapUsed();
  const start = performance.now();
  const latencies = await work();
  const seconds = (performance.now() - start) / 1000;
  const heapDelta = heapUsed() - before;
  collectGarbage();
  const retained = heapUsed() - before;
  return latencies === undefined ? { seconds, heapDelta, retained } : { seconds, heapDelta, retained, latencies };
}

function summarise(variant: VariantName, count: number, rounds: readonly Round[]): VariantResult {
  const rates = rounds.map((r) => count / r.seconds);
  const msgsPerSec = median(rates);
  const base = {
    variant,
    msgsPerSec,
    roundsMsgsPerSec: rates,
    perEventUs: 1e6 / msgsPerSec,
    heapDeltaKiB: median(rounds.map((r) => r.heapDelta)) / 1024,
    retainedKiB: median(rounds.map((r) => r.retained)) / 1024,
  };
  const latencies = rounds.flatMap((r) => r.latencies ?? []);
  if (latencies.length === 0) return base;
  latencies.sort((a, b) => a - b);
  return {
    ...base,
    latencyMs: { p50: percentile(latencies, 50), p99: percentile(latencies, 99), samples: latencies.length },
  };
}

function withRatios(results: VariantResult[]): VariantResult[] {
  const raw = results.find((r) => r.variant === "raw")?.msgsPerSec;
  const noSdk = results.find((r) => r.variant === "windshift")?.msgsPerSec;
  return results.map((r) => {
    if (r.variant === "raw" || raw === undefined) return r;
    const ratioToRaw = r.msgsPerSec / raw;
    if (r.variant === "windshift+sdk" && noSdk !== undefined) {
      return { ...r, ratioToRaw, ratioToNoSdk: r.msgsPerSec / noSdk };
    }
    return { ...r, ratioToRaw };
  });
}

function rate(count: number, r: Round): string {
  return `${Math.round(count / r.seconds).toLocaleString("en-US")}/s`;
}

/** Publishes `count` events with at most `window` in flight; `window` 1 records each call's latency. */
async function publishMany(d: Driver, subject: string, count: number, window: number): Promise<number[] | undefined> {
  if (window === 1) {
    const latencies = new Array<number>(count);
    for (let i = 0; i < count; i++) {
      const start = performance.now();
      await d.publish(subject, i);
      latencies[i] = performance.now() - start;
    }
    return latencies;
  }
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) await d.publish(subject, next++);
  };
  await Promise.all(Array.from({ length: Math.min(window, count) }, worker));
  return undefined;
}

/** Publish scenario: awaited one at a time (`window` 1) or with `window` in flight. */
export async function runPublish(
  ctx: ScenarioContext,
  id: string,
  title: string,
  count: number,
  window: number,
): Promise<ScenarioResult> {
  const stream = `${ctx.prefix}_${id.replace(/[^A-Za-z0-9]/g, "_")}`;
  const subject = `${stream}.created`;
  await ctx.admin.ensureStream(stream, { subjects: [`${stream}.>`] });
  const jsm = await jetstreamManager(ctx.adminNc);
  const check = async (variant: string, expected: number): Promise<void> => {
    const info = await jsm.streams.info(stream);
    if (info.state.messages !== expected) {
      throw new Error(`${id}/${variant}: the stream holds ${info.state.messages} events, expected ${expected}`);
    }
  };
  try {
    // Warm-up: a fifth of a round each, not counted.
    for (const d of ctx.drivers) {
      await jsm.streams.purge(stream);
      await publishMany(d, subject, Math.max(1, Math.floor(count / 5)), window);
      await ctx.afterRound(d.variant);
    }
    const rounds = new Map<VariantName, Round[]>(ctx.drivers.map((d) => [d.variant, []]));
    for (let r = 0; r < ctx.rounds; r++) {
      for (const d of ctx.drivers) {
        await jsm.streams.purge(stream);
        const round = await timed(() => publishMany(d, subject, count, window));
        await check(d.variant, count);
        await ctx.afterRound(d.variant);
        rounds.get(d.variant)?.push(round);
        ctx.progress(`${id} round ${r + 1}/${ctx.rounds} ${d.variant}: ${rate(count, round)}`);
      }
    }
    return {
      id,
      title,
      count,
      rounds: ctx.rounds,
      variants: withRatios(ctx.drivers.map((d) => summarise(d.variant, count, rounds.get(d.variant) ?? []))),
    };
  } finally {
    await jsm.streams.delete(stream).catch(() => {});
  }
}

/** Streams pre-filled once for the consume scenarios. */
export interface ConsumeStreams {
  /** Events as windshift without an SDK (or the raw publisher) writes them: no trace headers. */
  readonly plain: string;
  /** Events published by windshift with the SDK: they carry a trace context to continue. */
  readonly traced: string;
  readonly count: number;
}

/** Pre-fills the consume streams with `count` events each (untimed), 256 in flight. */
export async function prefillConsumeStreams(ctx: ScenarioContext, count: number): Promise<ConsumeStreams> {
  const plain = `${ctx.prefix}_consume_plain`;
  const traced = `${ctx.prefix}_consume_traced`;
  const byVariant = (v: VariantName) => ctx.drivers.find((d) => d.variant === v);
  for (const [stream, driver] of [
    [plain, byVariant("windshift") ?? byVariant("raw")],
    [traced, byVariant("windshift+sdk") ?? byVariant("windshift")],
  ] as const) {
    if (driver === undefined) throw new Error("no driver to pre-fill the consume streams");
    await ctx.admin.ensureStream(stream, { subjects: [`${stream}.>`] });
    await publishMany(driver, `${stream}.created`, count, 256);
    await ctx.afterRound(driver.variant);
  }
  ctx.progress(`pre-filled ${plain} and ${traced} with ${count.toLocaleString("en-US")} events each`);
  return { plain, traced, count };
}

/** Deletes the consume streams. */
export async function deleteConsumeStreams(ctx: ScenarioContext, streams: ConsumeStreams): Promise<void> {
  const jsm = await jetstreamManager(ctx.adminNc);
  for (const s of [streams.plain, streams.traced]) await jsm.streams.delete(s).catch(() => {});
}

/** Consume scenario: drain `count` events through a fresh consumer, decoding and acking each. */
export async function runConsume(
  ctx: ScenarioContext,
  streams: ConsumeStreams,
  id: string,
  title: string,
  confirmAcks: boolean,
  pending: number,
): Promise<ScenarioResult> {
  const count = streams.count;
  const jsm = await jetstreamManager(ctx.adminNc);
  let serial = 0;
  const once = async (d: Driver, n: number): Promise<Round> => {
    const stream = d.variant === "windshift+sdk" ? streams.traced : streams.plain;
    const consumer = `${id.replace(/[^A-Za-z0-9]/g, "_")}_${serial++}`;
    await ctx.admin.ensureConsumer(stream, {
      name: consumer,
      from: { start: true },
      maxPendingEvents: Math.max(1_000, pending),
    });
    try {
      const round = await timed(async () => {
        await d.drain(stream, consumer, n, confirmAcks, pending);
        return undefined;
      });
      await ctx.afterRound(d.variant);
      await verifyAcked(jsm, stream, consumer, n, `${id}/${d.variant}`);
      return round;
    } finally {
      await jsm.consumers.delete(stream, consumer).catch(() => {});
    }
  };
  for (const d of ctx.drivers) await once(d, Math.max(1, Math.floor(count / 5)));
  const rounds = new Map<VariantName, Round[]>(ctx.drivers.map((d) => [d.variant, []]));
  for (let r = 0; r < ctx.rounds; r++) {
    for (const d of ctx.drivers) {
      const round = await once(d, count);
      rounds.get(d.variant)?.push(round);
      ctx.progress(`${id} round ${r + 1}/${ctx.rounds} ${d.variant}: ${rate(count, round)}`);
    }
  }
  return {
    id,
    title,
    count,
    rounds: ctx.rounds,
    variants: withRatios(ctx.drivers.map((d) => summarise(d.variant, count, rounds.get(d.variant) ?? []))),
  };
}

/** Fails unless the server saw the first `n` events acked (fire-and-forget acks may need a moment). */
async function verifyAcked(
  jsm: Awaited<ReturnType<typeof jetstreamManager>>,
  stream: string,
  consumer: string,
  n: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const info = await jsm.consumers.info(stream, consumer);
    if (info.ack_floor.stream_seq >= n) return;
    if (Date.now() > deadline) {
      throw new Error(`${what}: the server's ack floor is ${info.ack_floor.stream_seq}, expected at least ${n}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
