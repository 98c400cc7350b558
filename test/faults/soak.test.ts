/**
 * Scenario 9: a soak. WINDSHIFT_SOAK_EVENTS events (default 1,000,000) go
 * through publish and subscribe (auto-ping and confirmed acks on, the
 * defaults); afterwards the heap is back where it was and no timer, resource,
 * status listener or subscription is left behind.
 */
import type { NatsConnection } from "@nats-io/nats-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { TestEventSchema } from "../../gen/windshift/test/v1/events_pb.js";
import { createEvents, type Events } from "../../src/index.js";
import { type NatsServer, startNatsServer } from "../../src/testing/index.js";
import { holdFor, uniqueName, waitFor } from "../helpers.js";
import { codeOf, connectTo, report, since, Tally } from "./support.js";

const COUNT = positiveInt("WINDSHIFT_SOAK_EVENTS", 1_000_000);
const WARMUP = 20_000;
/** Publishes in flight: each of this many lanes publishes one event at a time. */
const WINDOW = 1_000;
/** Heap growth allowed across the run, after a full GC at both ends. */
const HEAP_BOUND_BYTES = 8 * 1024 * 1024;

function positiveInt(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text === "") return fallback;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, not ${text}`);
  return n;
}

let server: NatsServer;
let nc: NatsConnection;
let events: Events;

beforeAll(async () => {
  server = await startNatsServer();
  // nats.js re-arms its 2-minute ping timer with setTimeout: on a slow run that
  // new timer would count as one left behind.
  nc = await connectTo(server.url, { pingInterval: 3_600_000 });
  events = createEvents(nc);
});

afterAll(async () => {
  await nc?.close().catch(() => {});
  await server?.stop();
});

/**
 * Counts live timers, unref'd ones included (which
 * `process.getActiveResourcesInfo()` leaves out, and the SDK unrefs all of
 * its own): wraps the global timer functions while installed.
 */
function installTimerCensus(): { readonly live: number; readonly peak: number; uninstall(): void } {
  const live = new Set<unknown>();
  let peak = 0;
  const track = (t: unknown): void => {
    live.add(t);
    if (live.size > peak) peak = live.size;
  };
  const g = globalThis as unknown as Record<string, (...args: unknown[]) => unknown>;
  const original = {
    setTimeout: g.setTimeout as (...args: unknown[]) => unknown,
    setInterval: g.setInterval as (...args: unknown[]) => unknown,
    clearTimeout: g.clearTimeout as (...args: unknown[]) => unknown,
    clearInterval: g.clearInterval as (...args: unknown[]) => unknown,
  };
  const wrappedSetTimeout = (fn: (...a: unknown[]) => void, ...rest: unknown[]) => {
    const t = original.setTimeout(
      (...a: unknown[]) => {
        live.delete(t);
        fn(...a);
      },
      ...rest,
    );
    track(t);
    return t;
  };
  const wrappedSetInterval = (...args: unknown[]) => {
    const t = original.setInterval(...args);
    track(t);
    return t;
  };
  const clear = (which: "clearTimeout" | "clearInterval") => (t: unknown) => {
    live.delete(t);
    return original[which](t);
  };
  Object.assign(wrappedSetTimeout, original.setTimeout);
  g.setTimeout = wrappedSetTimeout as (...args: unknown[]) => unknown;
  g.setInterval = wrappedSetInterval;
  g.clearTimeout = clear("clearTimeout");
  g.clearInterval = clear("clearInterval");
  return {
    get live() {
      return live.size;
    },
    get peak() {
      return peak;
    },
    uninstall() {
      Object.assign(g, original);
    },
  };
}

interface Snapshot {
  heapUsed: number;
  resources: Record<string, number>;
  timers: number;
  statusListeners: number;
  subscriptions: number;
}

async function snapshot(census: { live: number }): Promise<Snapshot> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc !== undefined) {
    // Two rounds: the first frees what finalizers of the second would keep.
    gc();
    await holdFor(50);
    gc();
  } else {
    // Without --expose-gc, give the collector a quiet second instead.
    await holdFor(1_000);
  }
  const resources: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) resources[r] = (resources[r] ?? 0) + 1;
  const protocol = (nc as unknown as { protocol: { listeners: unknown[]; subscriptions: { size(): number } } })
    .protocol;
  return {
    heapUsed: process.memoryUsage().heapUsed,
    resources,
    timers: census.live,
    statusListeners: protocol.listeners.length,
    subscriptions: protocol.subscriptions.size(),
  };
}

it(`soak: ${COUNT} events through publish and subscribe leave no heap growth and no timers behind`, async () => {
  const started = performance.now();
  const stream = uniqueName("soak");
  await events.ensureStream(stream, { subjects: [`${stream}.>`] });
  await events.ensureConsumer(stream, { name: "worker", from: { start: true } });
  const total = WARMUP + COUNT;
  const delivered = new Uint8Array(total);
  const acked = new Uint8Array(total);
  const publishErrors = new Tally();
  const ackErrors = new Tally();
  let deliveries = 0;
  let acksInFlight = 0;

  const publish = async (from: number, to: number): Promise<void> => {
    const lane = async (first: number): Promise<void> => {
      for (let i = first; i < to; i += WINDOW) {
        try {
          await events.publish(`${stream}.e`, TestEventSchema, { number: BigInt(i) });
          acked[i] = 1;
        } catch (err) {
          publishErrors.add(codeOf(err));
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(WINDOW, to - from) }, (_, k) => lane(from + k)));
  };

  /** Subscribes, consumes until every event in [from, to) was delivered, closes. */
  const pass = async (from: number, to: number): Promise<number> => {
    const t0 = performance.now();
    const sub = await events.subscribe(stream, "worker", { schema: TestEventSchema });
    const loop = (async () => {
      for await (const event of sub) {
        const i = Number(event.data.number);
        if (delivered[i] !== 255) delivered[i] = (delivered[i] ?? 0) + 1;
        deliveries++;
        acksInFlight++;
        // Acks are confirmed but not awaited one by one: the consumer's max ack
        // pending (1,000) bounds how many are in flight.
        event.ack().then(
          () => acksInFlight--,
          (err: unknown) => {
            acksInFlight--;
            ackErrors.add(codeOf(err));
          },
        );
      }
    })();
    await publish(from, to);
    let next = from;
    await waitFor(
      () => {
        while (next < to && (delivered[next] !== 0 || acked[next] === 0)) next++;
        return next >= to;
      },
      { timeoutMs: 600_000, intervalMs: 100, what: `every event from ${from} to ${to} delivered (at ${next})` },
    );
    await waitFor(() => acksInFlight === 0, { timeoutMs: 30_000, what: "every ack confirmed" });
    await sub.close();
    await loop;
    return since(t0);
  };

  const census = installTimerCensus();
  try {
    await pass(0, WARMUP);
    const before = await snapshot(census);
    const runMs = await pass(WARMUP, total);
    const after = await snapshot(census);

    let lost = 0;
    let duplicates = 0;
    for (let i = WARMUP; i < total; i++) {
      if (acked[i] === 1 && delivered[i] === 0) lost++;
      if ((delivered[i] ?? 0) > 1) duplicates += (delivered[i] ?? 0) - 1;
    }
    const heapGrowth = after.heapUsed - before.heapUsed;
    report("soak", {
      events: COUNT,
      runMs,
      eventsPerSecond: Math.round((COUNT * 1000) / runMs),
      heapBeforeMiB: (before.heapUsed / 2 ** 20).toFixed(1),
      heapAfterMiB: (after.heapUsed / 2 ** 20).toFixed(1),
      heapGrowthKiB: Math.round(heapGrowth / 1024),
      gc: typeof (globalThis as { gc?: unknown }).gc === "function",
      timers: `${before.timers}->${after.timers} (peak ${census.peak})`,
      resources: `${JSON.stringify(before.resources)}->${JSON.stringify(after.resources)}`,
      statusListeners: `${before.statusListeners}->${after.statusListeners}`,
      subscriptions: `${before.subscriptions}->${after.subscriptions}`,
      publishErrors: publishErrors.toString(),
      ackErrors: ackErrors.toString(),
      lost,
      duplicates,
      deliveries,
      tookMs: since(started),
    });

    expect(publishErrors.total).toBe(0);
    expect(ackErrors.total).toBe(0);
    expect(lost).toBe(0);
    expect(duplicates).toBe(0);
    expect(heapGrowth).toBeLessThan(HEAP_BOUND_BYTES);
    expect(after.timers).toBeLessThanOrEqual(before.timers);
    for (const [type, n] of Object.entries(after.resources)) {
      expect(n, `active ${type} resources`).toBeLessThanOrEqual(before.resources[type] ?? 0);
    }
    expect(after.statusListeners).toBe(before.statusListeners);
    expect(after.subscriptions).toBe(before.subscriptions);
  } finally {
    census.uninstall();
  }
}, 900_000);
