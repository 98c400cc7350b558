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
  /** Median over rounds of the highest heap used during a round minus heap used at its start, in KiB. */
  readonly heapPeakKiB: number;
  /** Median over rounds of heap used at the end of a round minus at its start (garbage included), in KiB. */
  readonly heapDeltaKiB: number;
  /** Heap still used after a full-size untimed round, both ends after a forced GC, in KiB. */
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

/** The timed part of a round: resolves with per-call latencies, or nothing. */
type Work = () => Promise<number[] | undefined>;

/**
 * Runs one round of `n` events for `d`: untimed set-up, `measure(work)`,
 * untimed checks and clean-up.
 */
type Once = <T>(d: Driver, n: number, measure: (work: Work) => Promise<T>) => Promise<T>;

interface Round {
  seconds: number;
  heapDelta: number;
  heapPeak: number;
  latencies?: number[];
}

const HEAP_SAMPLE_MS = 5;

/**
 * Times `work`, sampling the heap on the side. No forced GC here (see
 * {@link TimedScenario}).
 */
async function timed(work: Work): Promise<Round> {
  const before = heapUsed();
  let peak = before;
  const sampler = setInterval(() => {
    peak = Math.max(peak, heapUsed());
  }, HEAP_SAMPLE_MS);
  const start = performance.now();
  const latencies = await work();
  const seconds = (performance.now() - start) / 1000;
  clearInterval(sampler);
  const after = heapUsed();
  const round: Round = { seconds, heapDelta: after - before, heapPeak: Math.max(peak, after) - before };
  if (latencies !== undefined) round.latencies = latencies;
  return round;
}

/** Heap kept by `work`, with a forced GC at both ends. */
async function retainedBy(work: Work): Promise<number> {
  if (!collectGarbage()) {
    await work();
    return Number.NaN;
  }
  const before = heapUsed();
  await work();
  collectGarbage();
  return heapUsed() - before;
}

/**
 * A scenario whose timed rounds are done. `finish()` adds the retained heap,
 * measured with forced GCs: call it only once all timing in the process is
 * over, as a forced GC leaves V8 allocating slower for the rest of the process
 * (measured: the no-op telemetry paths took twice as long after one).
 */
export interface TimedScenario {
  finish(): Promise<ScenarioResult>;
}

/** The shared shape of every scenario: a warm-up per variant, then the timed rounds with the variants in turn. */
async function runRounds(
  ctx: ScenarioContext,
  id: string,
  title: string,
  count: number,
  once: Once,
  cleanup: () => Promise<void>,
): Promise<TimedScenario> {
  for (const d of ctx.drivers) {
    await once(d, Math.max(1, Math.floor(count / 5)), timed);
    await ctx.afterRound(d.variant);
  }
  const rounds = new Map<VariantName, Round[]>(ctx.drivers.map((d) => [d.variant, []]));
  for (let r = 0; r < ctx.rounds; r++) {
    for (const d of ctx.drivers) {
      const round = await once(d, count, timed);
      await ctx.afterRound(d.variant);
      rounds.get(d.variant)?.push(round);
      ctx.progress(`${id} round ${r + 1}/${ctx.rounds} ${d.variant}: ${rate(count, round)}`);
    }
  }
  return {
    async finish() {
      const retained = new Map<VariantName, number>();
      try {
        for (const d of ctx.drivers) {
          retained.set(d.variant, await once(d, count, retainedBy));
          await ctx.afterRound(d.variant);
        }
      } finally {
        await cleanup();
      }
      const results = ctx.drivers.map((d) =>
        summarise(d.variant, count, rounds.get(d.variant) ?? [], retained.get(d.variant) ?? Number.NaN),
      );
      return { id, title, count, rounds: ctx.rounds, variants: withRatios(results) };
    },
  };
}

function summarise(variant: VariantName, count: number, rounds: readonly Round[], retained: number): VariantResult {
  const rates = rounds.map((r) => count / r.seconds);
  const msgsPerSec = median(rates);
  const base = {
    variant,
    msgsPerSec,
    roundsMsgsPerSec: rates,
    perEventUs: 1e6 / msgsPerSec,
    heapPeakKiB: median(rounds.map((r) => r.heapPeak)) / 1024,
    heapDeltaKiB: median(rounds.map((r) => r.heapDelta)) / 1024,
    retainedKiB: retained / 1024,
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

/** Publish scenario: awaited one at a time (`window` 1) or with `window` in flight, into a purged stream. */
export async function runPublish(
  ctx: ScenarioContext,
  id: string,
  title: string,
  count: number,
  window: number,
): Promise<TimedScenario> {
  const stream = `${ctx.prefix}_${id.replace(/[^A-Za-z0-9]/g, "_")}`;
  const subject = `${stream}.created`;
  await ctx.admin.ensureStream(stream, { subjects: [`${stream}.>`] });
  const jsm = await jetstreamManager(ctx.adminNc);
  const once: Once = async (d, n, measure) => {
    await jsm.streams.purge(stream);
    const result = await measure(() => publishMany(d, subject, n, window));
    // Not timed: check that every event was stored.
    const info = await jsm.streams.info(stream);
    if (info.state.messages !== n) {
      throw new Error(`${id}/${d.variant}: the stream holds ${info.state.messages} events, expected ${n}`);
    }
    return result;
  };
  const cleanup = async () => {
    await jsm.streams.delete(stream).catch(() => {});
  };
  try {
    return await runRounds(ctx, id, title, count, once, cleanup);
  } catch (err) {
    await cleanup();
    throw err;
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
  count: number,
  confirmAcks: boolean,
  pending: number,
): Promise<TimedScenario> {
  if (count > streams.count) throw new Error(`${id}: ${count} events asked, the streams hold ${streams.count}`);
  const jsm = await jetstreamManager(ctx.adminNc);
  let serial = 0;
  const once: Once = async (d, n, measure) => {
    const stream = d.variant === "windshift+sdk" ? streams.traced : streams.plain;
    const consumer = `${id.replace(/[^A-Za-z0-9]/g, "_")}_${serial++}`;
    await ctx.admin.ensureConsumer(stream, {
      name: consumer,
      from: { start: true },
      maxPendingEvents: Math.max(1_000, pending),
    });
    try {
      const result = await measure(async () => {
        await d.drain(stream, consumer, n, confirmAcks, pending);
        return undefined;
      });
      await verifyAcked(jsm, stream, consumer, n, `${id}/${d.variant}`);
      return result;
    } finally {
      await jsm.consumers.delete(stream, consumer).catch(() => {});
    }
  };
  return runRounds(ctx, id, title, count, once, async () => {});
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
