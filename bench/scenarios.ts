/**
 * The scenarios: each runs its rounds for every variant in turn (raw,
 * windshift, windshift+sdk, raw, ...) on the same server and stream, and
 * keeps the median. Those run with the ceilings add them to the turn (...,
 * nats.js ceiling, C client), or those of them that can do the scenario's
 * work (latency: the C client only).
 *
 * @module
 */
import { jetstreamManager } from "@nats-io/jetstream";
import type { Events } from "windshift";
import {
  type Ceiling,
  type CeilingVariant,
  type Driver,
  eventData,
  type Payload,
  type ProcessMode,
  stampOf,
  timeOfStamp,
  type VariantName,
} from "./drivers.js";
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
  /**
   * Awaited publishes: per-call latency; end-to-end latency: publish call to
   * handler. Over all rounds' events.
   */
  readonly latencyMs?: { readonly p50: number; readonly p99: number; readonly max: number; readonly samples: number };
  /**
   * Median over rounds of the highest heap used during a round minus heap used
   * at its start, in KiB (this process's heap: NaN for the C client).
   */
  readonly heapPeakKiB: number;
  /** Median over rounds of heap used at the end of a round minus at its start (garbage included), in KiB. */
  readonly heapDeltaKiB: number;
  /** Heap still used after a full-size untimed round, both ends after a forced GC, in KiB. */
  readonly retainedKiB: number;
  /** {@link retainedKiB} scaled to 100,000 events: what each event would leave behind if memory grew with them. */
  readonly retainedKiBPer100k: number;
  /** This variant's median throughput over raw's. */
  readonly ratioToRaw?: number;
  /** This variant's throughput over raw's in the same round (the rounds alternate), for each round. */
  readonly roundRatiosToRaw?: readonly number[];
  /** windshift+sdk over windshift. */
  readonly ratioToNoSdk?: number;
}

/** windshift against one ceiling, in a scenario run with the ceilings. */
export interface CeilingComparison {
  readonly variant: CeilingVariant;
  /** Why the ceiling did not run (the C client without gcc or libnats); the ratios are then absent. */
  readonly missing?: string;
  /** windshift's (no SDK) median throughput over the ceiling's. */
  readonly windshiftRatio?: number;
  /** windshift's throughput over the ceiling's in the same round, for each round. */
  readonly windshiftRoundRatios?: readonly number[];
  /** Where both have latencies (the latency scenario): windshift's p50 and p99 over the ceiling's (lower is better). */
  readonly windshiftLatencyRatio?: { readonly p50: number; readonly p99: number };
}

/** One scenario's result. */
export interface ScenarioResult {
  readonly id: string;
  readonly title: string;
  /** Events per round. */
  readonly count: number;
  /** The encoded size of every event. */
  readonly payloadBytes: number;
  readonly rounds: number;
  readonly variants: readonly VariantResult[];
  /** In the scenarios run with the ceilings: windshift against each, or why it is missing. */
  readonly ceilings?: readonly CeilingComparison[];
}

/** A ceiling that could not run here, and why. */
export interface MissingCeiling {
  readonly variant: CeilingVariant;
  readonly note: string;
}

/** Where the scenarios run and how long. */
export interface ScenarioContext {
  readonly drivers: readonly Driver[];
  /** The ceilings that can run, for the scenarios run with them. */
  readonly ceilings: readonly Ceiling[];
  /** The ceilings that cannot, and why. */
  readonly missingCeilings: readonly MissingCeiling[];
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

/**
 * What the timed part of a round may report besides its wall time: per-event
 * latencies, and the seconds that count for its throughput when not all of
 * its time does (the end-to-end latency round leaves out the subscription's
 * start).
 */
interface Measured {
  latencies?: number[];
  seconds?: number;
}

/** The timed part of a round. */
type Work = () => Promise<Measured | undefined>;

/** A variant in a scenario's turn: a driver, or a ceiling in the scenarios run with them. */
type Contestant = Driver | Ceiling;

const isCeiling = (c: Contestant): c is Ceiling => "external" in c;

/**
 * Runs one round of `n` events for `d`: untimed set-up, `measure(work)`,
 * untimed checks and clean-up.
 */
type Once = <T>(d: Contestant, n: number, measure: (work: Work) => Promise<T>) => Promise<T>;

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
  const measured = await work();
  const seconds = (performance.now() - start) / 1000;
  clearInterval(sampler);
  const after = heapUsed();
  const round: Round = {
    seconds: measured?.seconds ?? seconds,
    heapDelta: after - before,
    heapPeak: Math.max(peak, after) - before,
  };
  if (measured?.latencies !== undefined) round.latencies = measured.latencies;
  return round;
}

/**
 * Heap kept by `work`, with a forced GC at both ends. Before the second,
 * `settle` runs (the SDK exports its bounded span queue) and pending I/O
 * callbacks get a moment, so that what remains is what the events left behind.
 */
async function retainedBy(work: Work, settle: () => Promise<void>): Promise<number> {
  if (!collectGarbage()) {
    await work();
    await settle();
    return Number.NaN;
  }
  const before = heapUsed();
  await work();
  await settle();
  await new Promise((resolve) => setTimeout(resolve, RETAINED_SETTLE_MS));
  collectGarbage();
  return heapUsed() - before;
}

const RETAINED_SETTLE_MS = 50;

/**
 * A scenario whose timed rounds are done. `finish()` adds the retained heap,
 * measured with forced GCs: call it only once all timing in the process is
 * over, as a forced GC leaves V8 allocating slower for the rest of the process
 * (measured: the no-op telemetry paths took twice as long after one).
 */
export interface TimedScenario {
  finish(): Promise<ScenarioResult>;
}

/**
 * The shared shape of every scenario: a warm-up per variant, then the timed
 * rounds with the variants in turn (the ceilings after the drivers, when
 * `withCeilings`: all of them, or those it accepts). `cleanup` runs after
 * `finish()`, or at once when a round fails.
 */
async function runRounds(
  ctx: ScenarioContext,
  id: string,
  title: string,
  count: number,
  payload: Payload,
  once: Once,
  cleanup: () => Promise<void>,
  withCeilings: boolean | ((c: Ceiling) => boolean) = false,
): Promise<TimedScenario> {
  const ceilings = withCeilings === false ? [] : ctx.ceilings.filter((c) => withCeilings === true || withCeilings(c));
  const contestants: readonly Contestant[] = [...ctx.drivers, ...ceilings];
  const rounds = new Map<VariantName, Round[]>(contestants.map((d) => [d.variant, []]));
  try {
    for (const d of contestants) {
      await once(d, Math.max(1, Math.floor(count / 5)), timed);
      await ctx.afterRound(d.variant);
    }
    for (let r = 0; r < ctx.rounds; r++) {
      for (const d of contestants) {
        const round = await once(d, count, timed);
        await ctx.afterRound(d.variant);
        rounds.get(d.variant)?.push(round);
        ctx.progress(`${id} round ${r + 1}/${ctx.rounds} ${d.variant}: ${rate(count, round)}`);
      }
    }
  } catch (err) {
    await cleanup();
    throw err;
  }
  return {
    async finish() {
      const retained = new Map<VariantName, number>();
      try {
        for (const d of contestants) {
          // Another process's memory is not in this heap.
          if (isCeiling(d) && d.external) continue;
          retained.set(d.variant, await once(d, count, (work) => retainedBy(work, () => ctx.afterRound(d.variant))));
        }
      } finally {
        await cleanup();
      }
      const results = contestants.map((d) =>
        summarise(
          d.variant,
          count,
          rounds.get(d.variant) ?? [],
          retained.get(d.variant) ?? Number.NaN,
          isCeiling(d) && d.external,
        ),
      );
      const variants = withRatios(results);
      return {
        id,
        title,
        count,
        payloadBytes: payload.bytes,
        rounds: ctx.rounds,
        variants,
        ...(withCeilings === false ? {} : { ceilings: compareWithCeilings(ctx, ceilings, variants) }),
      };
    },
  };
}

/** `external`: the variant ran in another process, so this process's heap says nothing about it. */
function summarise(
  variant: VariantName,
  count: number,
  rounds: readonly Round[],
  retained: number,
  external: boolean,
): VariantResult {
  const rates = rounds.map((r) => count / r.seconds);
  const msgsPerSec = median(rates);
  const base = {
    variant,
    msgsPerSec,
    roundsMsgsPerSec: rates,
    perEventUs: 1e6 / msgsPerSec,
    heapPeakKiB: external ? Number.NaN : median(rounds.map((r) => r.heapPeak)) / 1024,
    heapDeltaKiB: external ? Number.NaN : median(rounds.map((r) => r.heapDelta)) / 1024,
    retainedKiB: retained / 1024,
    retainedKiBPer100k: (retained / 1024) * (100_000 / count),
  };
  const latencies = rounds.flatMap((r) => r.latencies ?? []);
  if (latencies.length === 0) return base;
  latencies.sort((a, b) => a - b);
  return {
    ...base,
    latencyMs: {
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      max: latencies[latencies.length - 1] as number,
      samples: latencies.length,
    },
  };
}

function withRatios(results: VariantResult[]): VariantResult[] {
  const raw = results.find((r) => r.variant === "raw");
  const noSdk = results.find((r) => r.variant === "windshift")?.msgsPerSec;
  return results.map((r) => {
    if (r.variant === "raw" || raw === undefined) return r;
    const ratios = {
      ratioToRaw: r.msgsPerSec / raw.msgsPerSec,
      roundRatiosToRaw: r.roundsMsgsPerSec.map((rate, i) => rate / (raw.roundsMsgsPerSec[i] ?? Number.NaN)),
    };
    if (r.variant === "windshift+sdk" && noSdk !== undefined) {
      return { ...r, ...ratios, ratioToNoSdk: r.msgsPerSec / noSdk };
    }
    return { ...r, ...ratios };
  });
}

/** The order of the ceilings in results and reports. */
const CEILING_VARIANTS: readonly CeilingVariant[] = ["nats.js ceiling", "C client"];

/**
 * windshift against each ceiling that ran (`ran`) and each that could not run
 * here; a ceiling left out of the scenario (it cannot do its work) is not in it.
 */
function compareWithCeilings(
  ctx: ScenarioContext,
  ran: readonly Ceiling[],
  variants: readonly VariantResult[],
): CeilingComparison[] {
  const windshift = variants.find((v) => v.variant === "windshift");
  return CEILING_VARIANTS.flatMap((variant): CeilingComparison[] => {
    const missing = ctx.missingCeilings.find((m) => m.variant === variant);
    if (missing !== undefined) return [{ variant, missing: missing.note }];
    if (!ran.some((c) => c.variant === variant)) return [];
    const ceiling = variants.find((v) => v.variant === variant);
    if (ceiling === undefined || windshift === undefined) return [{ variant, missing: "not run" }];
    const wl = windshift.latencyMs;
    const cl = ceiling.latencyMs;
    return [
      {
        variant,
        windshiftRatio: windshift.msgsPerSec / ceiling.msgsPerSec,
        windshiftRoundRatios: windshift.roundsMsgsPerSec.map(
          (rate, i) => rate / (ceiling.roundsMsgsPerSec[i] ?? Number.NaN),
        ),
        ...(wl === undefined || cl === undefined
          ? {}
          : { windshiftLatencyRatio: { p50: wl.p50 / cl.p50, p99: wl.p99 / cl.p99 } }),
      },
    ];
  });
}

function rate(count: number, r: Round): string {
  return `${Math.round(count / r.seconds).toLocaleString("en-US")}/s`;
}

/** How a publish scenario keeps events in flight. */
export type PublishMode = { readonly awaited: true } | { readonly window: number };

/**
 * Publishes `count` events, the `i`-th to `subjectOf(i)`: awaited one at a
 * time, recording each call's latency, or with `window` workers that each
 * await their publish before starting the next (so exactly `window` are in
 * flight until the end).
 */
async function publishMany(
  d: Driver,
  subjectOf: (i: number) => string,
  count: number,
  mode: PublishMode,
  payload: Payload,
): Promise<Measured | undefined> {
  if ("awaited" in mode) {
    const latencies = new Array<number>(count);
    for (let i = 0; i < count; i++) {
      const start = performance.now();
      await d.publish(subjectOf(i), eventData(i, payload));
      latencies[i] = performance.now() - start;
    }
    return { latencies };
  }
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      await d.publish(subjectOf(i), eventData(i, payload));
    }
  };
  await Promise.all(Array.from({ length: Math.min(mode.window, count) }, worker));
  return undefined;
}

const safeName = (id: string) => id.replace(/[^A-Za-z0-9]/g, "_");

/**
 * Publish scenario: awaited one at a time or with a window in flight, into a
 * purged stream; `withCeilings` (a window only) adds the ceilings to the turn.
 */
export async function runPublish(
  ctx: ScenarioContext,
  id: string,
  title: string,
  count: number,
  mode: PublishMode,
  payload: Payload,
  withCeilings = false,
): Promise<TimedScenario> {
  if (withCeilings && "awaited" in mode) throw new Error(`${id}: the ceilings publish with a window in flight`);
  const stream = `${ctx.prefix}_${safeName(id)}`;
  const subject = `${stream}.created`;
  await ctx.admin.ensureStream(stream, { subjects: [`${stream}.>`] });
  const jsm = await jetstreamManager(ctx.adminNc);
  const once: Once = async (d, n, measure) => {
    await jsm.streams.purge(stream);
    const result = await measure(async () => {
      if (!isCeiling(d)) return publishMany(d, () => subject, n, mode, payload);
      if ("awaited" in mode) throw new Error(`${id}: the ceilings publish with a window in flight`);
      return d.publish(subject, n, mode.window, payload);
    });
    // Not timed: check that every event was stored.
    const info = await jsm.streams.info(stream);
    if (info.state.messages !== n) {
      throw new Error(`${id}/${d.variant}: the stream holds ${info.state.messages} events, expected ${n}`);
    }
    return result;
  };
  return runRounds(
    ctx,
    id,
    title,
    count,
    payload,
    once,
    async () => {
      await jsm.streams.delete(stream).catch(() => {});
    },
    withCeilings,
  );
}

/** How many subjects the consume streams' events take turns on (for `orderBy: "subject"`). */
export const CONSUME_SUBJECTS = 8;

/**
 * Streams pre-filled once for the consume scenarios of one payload size; the
 * `i`-th event on `<stream>.created.<i mod CONSUME_SUBJECTS>`.
 */
export interface ConsumeStreams {
  /** Events as windshift without an SDK (or the raw publisher) writes them: no trace headers. */
  readonly plain: string;
  /** Events published by windshift with the SDK: they carry a trace context to continue. */
  readonly traced: string;
  readonly count: number;
  readonly payload: Payload;
}

/** Pre-fills two consume streams with `count` events each of `payload`'s size (untimed), 256 in flight. */
export async function prefillConsumeStreams(
  ctx: ScenarioContext,
  count: number,
  payload: Payload,
): Promise<ConsumeStreams> {
  const plain = `${ctx.prefix}_consume_plain_${payload.bytes}`;
  const traced = `${ctx.prefix}_consume_traced_${payload.bytes}`;
  const byVariant = (v: VariantName) => ctx.drivers.find((d) => d.variant === v);
  for (const [stream, driver] of [
    [plain, byVariant("windshift") ?? byVariant("raw")],
    [traced, byVariant("windshift+sdk") ?? byVariant("windshift")],
  ] as const) {
    if (driver === undefined) throw new Error("no driver to pre-fill the consume streams");
    await ctx.admin.ensureStream(stream, { subjects: [`${stream}.>`] });
    await publishMany(driver, (i) => `${stream}.created.${i % CONSUME_SUBJECTS}`, count, { window: 256 }, payload);
    await ctx.afterRound(driver.variant);
  }
  ctx.progress(
    `pre-filled ${plain} and ${traced} with ${count.toLocaleString("en-US")} events of ${payload.label} each`,
  );
  return { plain, traced, count, payload };
}

/** Deletes the consume streams. */
export async function deleteConsumeStreams(ctx: ScenarioContext, streams: ConsumeStreams): Promise<void> {
  const jsm = await jetstreamManager(ctx.adminNc);
  for (const s of [streams.plain, streams.traced]) await jsm.streams.delete(s).catch(() => {});
}

/**
 * Consume scenario: drain `count` events through a fresh consumer, decoding
 * and acking each; with `processing`, through the variant's `process`
 * instead of `drain`. `withCeilings` (fire-and-forget `drain` only) adds the
 * ceilings to the turn; they read the plain stream, as windshift does.
 */
export async function runConsume(
  ctx: ScenarioContext,
  streams: ConsumeStreams,
  id: string,
  title: string,
  count: number,
  confirmAcks: boolean,
  pending: number,
  processing?: ProcessMode,
  withCeilings = false,
): Promise<TimedScenario> {
  if (count > streams.count) throw new Error(`${id}: ${count} events asked, the streams hold ${streams.count}`);
  if (withCeilings && (confirmAcks || processing !== undefined)) {
    throw new Error(`${id}: the ceilings consume with fire-and-forget acks, without a processor`);
  }
  const jsm = await jetstreamManager(ctx.adminNc);
  let serial = 0;
  const once: Once = async (d, n, measure) => {
    const stream = d.variant === "windshift+sdk" ? streams.traced : streams.plain;
    const consumer = `${safeName(id)}_${serial++}`;
    await ctx.admin.ensureConsumer(stream, {
      name: consumer,
      from: { start: true },
      maxUnsettledEvents: Math.max(1_000, pending),
    });
    try {
      const result = await measure(async () => {
        if (isCeiling(d)) return d.drain(stream, consumer, n);
        if (processing === undefined) await d.drain(stream, consumer, n, confirmAcks, pending);
        else await d.process(stream, consumer, n, confirmAcks, pending, processing);
        return undefined;
      });
      await verifyAcked(jsm, stream, consumer, n, `${id}/${d.variant}`);
      return result;
    } finally {
      await jsm.consumers.delete(stream, consumer).catch(() => {});
    }
  };
  return runRounds(ctx, id, title, count, streams.payload, once, async () => {}, withCeilings);
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Publishes `count` events at `rate` per second, on schedule from the start:
 * at every timer tick, as many as are due by then (so up to a millisecond's
 * worth at once), none awaited before the next. Each event carries the time of
 * its own publish call.
 */
async function pacedPublish(
  d: Driver,
  subject: string,
  count: number,
  rate: number,
  payload: Payload,
  epoch: number,
): Promise<void> {
  const calls: Promise<unknown>[] = [];
  const start = performance.now();
  let i = 0;
  for (;;) {
    const due = Math.min(count, Math.floor(((performance.now() - start) * rate) / 1_000) + 1);
    for (; i < due; i++) calls.push(d.publish(subject, eventData(i, payload, stampOf(performance.now(), epoch))));
    if (i === count) break;
    await sleep(Math.max(0, start + (i * 1_000) / rate - performance.now()));
  }
  await Promise.all(calls);
}

/**
 * One end-to-end latency round: subscribes, waits for the subscription to be
 * pulling, then publishes at `rate` per second while the handler records, for
 * each event, now minus the publish time the event carries. Its throughput
 * counts from the first publish to the last event handled.
 */
async function latencyRound(
  d: Driver,
  stream: string,
  consumer: string,
  count: number,
  rate: number,
  payload: Payload,
  confirmAcks: boolean,
  pending: number,
): Promise<Measured> {
  const epoch = performance.now();
  const latencies = new Array<number>(count);
  let received = 0;
  const drained = d.drain(stream, consumer, count, confirmAcks, pending, (event) => {
    latencies[received++] = performance.now() - timeOfStamp(event.number, epoch);
  });
  await Promise.race([drained, sleep(SUBSCRIBE_SETTLE_MS)]);
  const start = performance.now();
  const deadlineMs = (count * 1_000) / rate + LATENCY_GRACE_MS;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${d.variant}: ${received} of ${count} events handled after ${deadlineMs} ms`)),
      deadlineMs,
    );
  });
  try {
    await Promise.race([
      Promise.all([drained, pacedPublish(d, `${stream}.created`, count, rate, payload, epoch)]),
      deadline,
    ]);
  } finally {
    clearTimeout(timer);
  }
  const seconds = (performance.now() - start) / 1_000;
  if (received !== count) throw new Error(`${d.variant}: ${received} of ${count} events handled`);
  return { latencies, seconds };
}

/** How long a latency round lets the subscription start before publishing (not in its throughput). */
const SUBSCRIBE_SETTLE_MS = 200;
/** How long after the last scheduled publish a latency round may take before it fails. */
const LATENCY_GRACE_MS = 15_000;

/**
 * End-to-end latency: each round publishes `count` events at `rate` per
 * second into a purged stream, through the variant's own publisher, while
 * the same variant consumes them (`confirmAcks` as given). The ceilings that
 * have a `latency` round (the C client) take their turn after the drivers,
 * with the same purge, fresh consumer and check.
 */
export async function runLatency(
  ctx: ScenarioContext,
  id: string,
  title: string,
  count: number,
  rate: number,
  payload: Payload,
  confirmAcks: boolean,
  pending: number,
): Promise<TimedScenario> {
  const stream = `${ctx.prefix}_${safeName(id)}`;
  await ctx.admin.ensureStream(stream, { subjects: [`${stream}.>`] });
  const jsm = await jetstreamManager(ctx.adminNc);
  let serial = 0;
  const once: Once = async (d, n, measure) => {
    await jsm.streams.purge(stream);
    const firstSeq = (await jsm.streams.info(stream)).state.last_seq + 1;
    const consumer = `${safeName(id)}_${serial++}`;
    await ctx.admin.ensureConsumer(stream, {
      name: consumer,
      from: { start: true },
      maxUnsettledEvents: Math.max(1_000, pending),
    });
    try {
      const result = await measure(async () => {
        if (!isCeiling(d)) return latencyRound(d, stream, consumer, n, rate, payload, confirmAcks, pending);
        if (d.latency === undefined) throw new Error(`${id}: ${d.variant} does not measure latency`);
        const r = await d.latency(stream, consumer, `${stream}.created`, n, rate, payload, confirmAcks, pending);
        return { seconds: r.seconds, latencies: r.latencies };
      });
      await verifyAcked(jsm, stream, consumer, firstSeq + n - 1, `${id}/${d.variant}`);
      return result;
    } finally {
      await jsm.consumers.delete(stream, consumer).catch(() => {});
    }
  };
  return runRounds(
    ctx,
    id,
    title,
    count,
    payload,
    once,
    async () => {
      await jsm.streams.delete(stream).catch(() => {});
    },
    (c) => c.latency !== undefined,
  );
}

/**
 * Fails unless the server saw every event up to stream sequence `n` acked
 * (fire-and-forget acks may need a moment).
 */
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
